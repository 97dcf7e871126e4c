"""Benchmarks and the eval kit they score with. A package so that tests can import benchmarks.evalkit."""
