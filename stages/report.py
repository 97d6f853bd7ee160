"""report stage: python -m stages.report -> reports/{report.md,metrics.json,figures/,plots/}"""
from stages import _cli  # first: it checks KERAS_BACKEND before anything loads Keras

from ablation.core import layout
from ablation.report import arm_report


def main():
    params = _cli.params_from(_cli.parser(__doc__).parse_args())
    out = layout.ArmReportFiles()
    summary = arm_report.write_arm_report(params, layout.RESULTS, layout.FETCHED, out)
    for dataset, values in summary.items():
        print(f"report {dataset}: test accuracy {values['test_accuracy']}")
    print(f"wrote {out.report_md}")


if __name__ == "__main__":
    _cli.main_guarded(main)
