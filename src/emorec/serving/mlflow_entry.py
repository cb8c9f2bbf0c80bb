"""MLflow models-from-code entry: the file MLflow runs to build the served pyfunc
(see emorec.serving.service_model). Logged as readable code, never as a pickle."""

from mlflow.models import set_model

from emorec.serving.service_model import EmotionService

set_model(EmotionService())
