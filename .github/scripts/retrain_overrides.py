"""Print `args=<dvc exp run -S overrides>` from the workflow inputs (IN_* variables)."""
from emorec.experiments.retrain import main_overrides

main_overrides()
