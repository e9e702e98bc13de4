"""The claims ledger: sentences people bring (seed blog posts, the papers they lean on), each with its
source, quote, tolerance and a named check that computes Daedalus's number (`claims.yaml`, `checks_*`),
evaluated into one tidy DataFrame with a verdict per claim (`ledger.evaluate_claims`)."""

from .ledger import VERDICTS, evaluate_claims, load_claims

__all__ = ["VERDICTS", "evaluate_claims", "load_claims"]
