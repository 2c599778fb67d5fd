"""bf16 autocast against float32 on this CPU, one thread: a matmul, the embedded model's
forward and backward, and sampled generation (docs/performance.md, "bf16 on a CPU without
native bf16"). Run on an idle machine:

    python scripts/diagnostics/bf16_cpu.py MODEL_DIR   # e.g. $HARNESS_CACHE/models/smollm2-135m-instruct
"""

import sys
import time

import torch
from transformers import AutoModelForCausalLM

from harness.seeding import generator


def main(model_dir: str) -> None:
    torch.set_num_threads(1)
    g = generator(0, "bf16-cpu-diagnostic", kind="torch")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tokens = torch.randint(0, 1000, (4, 128), generator=g)
    prompts = torch.randint(0, 1000, (16, 32), generator=g)
    a, b = torch.randn(576, 576, generator=g), torch.randn(576, 2048, generator=g)

    def gflops() -> float:
        start = time.perf_counter()
        for _ in range(20):
            a @ b
        return 2 * 576 * 576 * 2048 * 20 / (time.perf_counter() - start) / 1e9

    def step() -> float:
        start = time.perf_counter()
        model(input_ids=tokens, labels=tokens).loss.backward()
        model.zero_grad()
        return time.perf_counter() - start

    def generate() -> float:
        start = time.process_time()
        with torch.no_grad():
            model.generate(prompts, attention_mask=torch.ones_like(prompts), max_new_tokens=48,
                           min_new_tokens=48, do_sample=True, pad_token_id=0)
        return time.process_time() - start

    for name, ctx in [("fp32", lambda: torch.autocast("cpu", enabled=False)),
                      ("bf16 autocast", lambda: torch.autocast("cpu", dtype=torch.bfloat16))]:
        with ctx():
            gflops(), step()
            print(f"{name}: matmul 576x576x2048 {gflops():.2f} GFLOPS; forward+backward "
                  f"4 x 128 tokens {min(step() for _ in range(2)):.2f} s; sampled generation "
                  f"16 x 48 tokens {generate():.2f} CPU s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
