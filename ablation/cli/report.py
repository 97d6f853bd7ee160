"""report stage: ablate report -> reports/{report.md,metrics.json,figures/,plots/}"""
from ablation.cli import common  # first: it checks KERAS_BACKEND before anything loads Keras

from ablation.core import atomic_files, layout
from ablation.report import arm_report


def parser():
    return common.parser(__doc__)


def main():
    params = common.params_from(parser().parse_args())
    out = layout.ArmReportFiles()
    with atomic_files.all_or_nothing():
        summary = arm_report.write_arm_report(params, layout.RESULTS, layout.FETCHED, out)
    for dataset, values in summary.items():
        print(f"report {dataset}: test accuracy {values['test_accuracy']}")
    print(f"wrote {out.report_md}")
