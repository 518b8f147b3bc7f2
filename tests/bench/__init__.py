"""The benchmarks' pure arithmetic (bench/): statistics, layouts, prices."""
