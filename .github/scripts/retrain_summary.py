"""Print the retrain job summary (markdown) for $GITHUB_STEP_SUMMARY."""
from emorec.retrain import main_summary

main_summary()
