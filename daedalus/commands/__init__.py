"""Subcommand modules, in the order `daedalus --help` lists them, and each one's one-line help
(kept here so `daedalus --help` lists them without importing any command module)."""

COMMAND_HELP = {
    "models": "list shipped model configs (sizes, attention, experts, sources)",
    "hardware": "list hardware profiles (peaks, memory, links, price)",
    "memory": "KV cache and weight memory per model over context and batch",
    "simulate": "roofline prediction per op and per step",
    "validate": "compare measured kernel times with the simulator's predictions",
    "report": "self-contained HTML report of a benchmark run (figures, errors, provenance)",
    "plan": "what to buy: smallest deployment per hardware meeting TTFT / TPOT, with $/token",
    "figures": "draw figures (KV memory, roofline, op breakdown, hardware, Pareto) for chosen models and "
               "hardware, no benchmark run needed",
    "claims": "claims people bring (blog posts, papers), checked: verdict per claim",
    "bench": "measured microbenchmarks (MLA, attention, MoE, GEMM, copy) -> results/<run-id>/",
    "calibrate": "measure GEMM FLOP/s and memory bandwidth; write a hardware profile",
    "run": "main job: measure + validate + predict + report into results/<run-id>/",
}
COMMANDS = list(COMMAND_HELP)
