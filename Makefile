# Two commands on a fresh machine: `make demo` and `make test`. Everything lives in .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test accuracy bench snapshot fixtures clean

# Pinned to constraints.txt: the versions the tests last passed with (see its header).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]' -c constraints.txt
	$(BIN)/python -m hfvram.record >/dev/null  # the records' compiled methods, as pip compiles a wheel (hfvram/record.py)
	touch $(STAMP)

# The main job. Works with no Hub access: the model is answered from the bundled snapshot.
demo: $(STAMP)
	$(BIN)/hfvram meta-llama/Llama-2-7b-hf

test: $(STAMP)
	$(BIN)/python -m pytest

# Every usable published measurement in validation/ through the public API: median and worst error.
accuracy: $(STAMP)
	$(BIN)/python -m hfvram.accuracy

# Round trips, wall times and scan throughput against the fake Hub with 50 ms per request.
bench: $(STAMP)
	$(BIN)/python bench/bench.py

# Regenerate the bundled snapshot (hfvram/snapshot/) from fixtures/.
snapshot: $(STAMP)
	$(BIN)/python tools/build_snapshot.py

# Rebuild reconstructed tensor tables (needs torch: pip install -e '.[synth]').
fixtures: $(STAMP)
	$(BIN)/python tools/build_fixtures.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
