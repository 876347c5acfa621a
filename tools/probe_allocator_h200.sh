set -u
# The command that took validation/own-h200/allocator-blocks.jsonl and built-tensors.jsonl.gz on the H200 (run from
# the repo root by the device tool, $OUT its output folder); Mamba-130M was run again alone with --attn eager.
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > $OUT/gpu.txt 2>&1
python -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__)" > $OUT/versions.txt 2>&1
python tools/probe_allocator.py --orders --out $OUT/built-tensors.jsonl.gz HuggingFaceTB/SmolLM3-3B LiquidAI/LFM2-1.2B Qwen/Qwen1.5-MoE-A2.7B Qwen/Qwen2.5-0.5B-Instruct Qwen/Qwen2.5-1.5B Qwen/Qwen3-0.6B Qwen/Qwen3-30B-A3B Qwen/Qwen3-4B Qwen/Qwen3-8B Qwen/Qwen3.5-0.8B Qwen/Qwen3.5-35B-A3B Qwen/Qwen3.5-9B ai21labs/Jamba-v0.1 deepseek-ai/DeepSeek-V2-Lite google/gemma-2-9b-it google/gemma-3-1b-it google/gemma-7b ibm-granite/granite-3.1-1b-a400m-instruct meta-llama/Llama-3.2-1B meta-llama/Llama-3.2-3B-Instruct meta-llama/Meta-Llama-3.1-8B microsoft/Phi-3-mini-4k-instruct mistralai/Mistral-7B-Instruct-v0.3 mistralai/Mixtral-8x7B-Instruct-v0.1 nvidia/Nemotron-H-56B-Base-8K state-spaces/mamba-130m-hf > $OUT/orders.log 2>&1 &
python tools/probe_allocator.py --measure google/gemma-3-1b-it meta-llama/Llama-3.2-1B Qwen/Qwen3-0.6B microsoft/Phi-3-mini-4k-instruct ibm-granite/granite-3.1-1b-a400m-instruct state-spaces/mamba-130m-hf mistralai/Mistral-7B-Instruct-v0.3 google/gemma-2-9b-it deepseek-ai/DeepSeek-V2-Lite Qwen/Qwen3-30B-A3B > $OUT/measure.jsonl 2> $OUT/measure.err
wait
cat $OUT/versions.txt; tail -3 $OUT/measure.err; cat $OUT/measure.jsonl | cut -c1-400; tail -30 $OUT/orders.log | cut -c1-200
