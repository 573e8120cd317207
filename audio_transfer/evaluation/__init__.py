"""Evaluation of trained models: classification and speaker-verification metrics, figures and reports.

Pure NumPy (figures with matplotlib's object API, no pyplot state), so training and the CLI can call it
from any thread. Example::

    report = classification_metrics(y_true, y_pred, labels=labels, probabilities=probabilities)
    write_report(report, run_dir, extra={"task": "kws"})  # metrics.json, report.txt, confusion_matrix.png

    i, j, same = trial_pairs(speakers)
    report = verification_metrics(cosine_scores(embeddings, i, j), same)
    report.eer, report.min_dcf

    report = KeywordDetectionReport(thresholds, detected, false_accepts, negative_seconds=3600.0)
    plot_false_accept_curve(report, "det.png", chosen_index=report.threshold_index(0.5))
"""

from audio_transfer.evaluation.classification_report import ClassificationReport, classification_metrics
from audio_transfer.evaluation.keyword_detection_report import KeywordDetectionReport
from audio_transfer.evaluation.plots import plot_confusion_matrix, plot_det_curve, plot_false_accept_curve
from audio_transfer.evaluation.report_files import write_report
from audio_transfer.evaluation.trials import cosine_scores, trial_pairs
from audio_transfer.evaluation.verification_report import VerificationReport, verification_metrics

__all__ = [
    "ClassificationReport",
    "KeywordDetectionReport",
    "VerificationReport",
    "classification_metrics",
    "cosine_scores",
    "plot_confusion_matrix",
    "plot_det_curve",
    "plot_false_accept_curve",
    "trial_pairs",
    "verification_metrics",
    "write_report",
]
