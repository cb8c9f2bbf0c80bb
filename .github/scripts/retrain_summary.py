"""Print the retrain job summary (markdown) for $GITHUB_STEP_SUMMARY."""
from emorec.experiments.retrain import main_summary

main_summary()
