"""train.mixed_precision: auto picks what the machine runs fast, an explicit precision
the machine emulates is warned about, and what ran is what a run records."""
from ablation.core import precision

EPYC_AVX2 = {"cpu": "AMD EPYC 7B13", "cpu_flags": ["avx2", "fma"], "gpus": [], "backend": "tensorflow"}
XEON_AMX = {"cpu": "Intel Xeon", "cpu_flags": ["avx2", "avx512f", "avx512_bf16", "amx_bf16"], "gpus": [],
            "backend": "tensorflow"}


def test_auto_is_bf16_only_where_it_was_measured_faster():
    assert precision.resolve("auto", XEON_AMX) == "mixed_bfloat16"
    assert precision.resolve("auto", {**EPYC_AVX2, "cpu_flags": ["avx512f", "avx512_bf16"]}) == "mixed_bfloat16"
    assert precision.resolve("auto", {**XEON_AMX, "cpu_flags": ["avx512f", "avx512_bf16"]}) == "float32"  # 0.73x
    assert precision.resolve("auto", EPYC_AVX2) == "float32"
    assert precision.resolve("mixed_bfloat16", EPYC_AVX2) == "mixed_bfloat16"  # explicit: as asked


def test_an_explicit_precision_the_cpu_emulates_is_warned_about_with_its_cost_and_fix():
    warning = precision.emulation_warning("mixed_bfloat16", EPYC_AVX2)
    assert warning.startswith("warning: train.mixed_precision=mixed_bfloat16 is emulated on this CPU (AMD EPYC")
    assert precision.EMULATED_COST in warning and "Fix: -S train.mixed_precision=auto" in warning
    assert precision.emulation_warning("mixed_float16", XEON_AMX) is not None  # no CPU has float16 units here
    assert precision.emulation_warning("mixed_bfloat16", XEON_AMX) is None
    assert precision.emulation_warning("auto", EPYC_AVX2) is None
    assert precision.emulation_warning("float32", EPYC_AVX2) is None

