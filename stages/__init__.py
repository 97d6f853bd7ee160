"""DVC stage entry points: thin scripts that read params, call `ablation`, write outputs."""
