# The runs behind validation/own-h200/peak-anatomy.jsonl (run from the repo root by the device tool; $OUT its output)
set -u
python tools/peak_anatomy.py ibm-granite/granite-3.1-1b-a400m-instruct:1:8192 Qwen/Qwen2.5-0.5B-Instruct:1:2048 \
    google/gemma-3-1b-it:1:8192 LiquidAI/LFM2-1.2B:1:32768 meta-llama/Llama-3.2-1B:1:32768 \
    nvidia/Nemotron-H-56B-Base-8K:1:128 > $OUT/anatomy.jsonl 2> $OUT/anatomy.err
python tools/peak_anatomy.py --attn eager state-spaces/mamba-130m-hf:1:128 state-spaces/mamba-130m-hf:1:2048 \
    >> $OUT/anatomy.jsonl 2>> $OUT/anatomy.err
tail -5 $OUT/anatomy.err
python -c "
import json
for l in open('$OUT/anatomy.jsonl'):
    d = json.loads(l)
    if 'error' in d: print(d); continue
    print(d['model'], d['batch'], d['prompt'], 'before', d['before'], 'max', d['max_allocated'], 'replayed', d['replayed_peak'], 'events', d['events'], d['seconds'], 's')
    for g in d['groups'][:12]: print('   ', g[1], g[2], g[0][:110], g[3][:3])
"
