#!/usr/bin/env python3
"""Where a generator step's time goes in onnxruntime (CPU, 2 threads): share of kernel time per
op type after graph optimisation, from onnxruntime's profiler, plus ms per batch-2 call.

usage: python3 scripts/onnx_profile.py GEN.onnx
"""
import collections, json, os, sys, tempfile, time
import numpy as np
import onnxruntime as ort

so = ort.SessionOptions()
so.intra_op_num_threads = 2
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
so.add_session_config_entry("session.disable_quant_qdq", "1")  # as the web worker
so.enable_profiling = True
so.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "profile")
s = ort.InferenceSession(sys.argv[1], so, providers=["CPUExecutionProvider"])
feeds = {"x_t": np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32), "t": np.array([0.3, 0.3], np.float32), "breed": np.array([1, 12], np.int64)}
for _ in range(5):
    s.run(None, feeds)
t0 = time.perf_counter()
for _ in range(30):
    s.run(None, feeds)
print(f"{(time.perf_counter() - t0) / 30 * 1000:.1f} ms per batch-2 call")
by_op = collections.Counter()
for e in json.load(open(s.end_profiling())):
    if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
        by_op[e["args"]["op_name"]] += e["dur"]
total = sum(by_op.values())
for op, us in by_op.most_common():
    print(f"{op:28s} {100 * us / total:5.1f}%")
