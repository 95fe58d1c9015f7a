# Thin wrapper over Meson for the README's commands.
#   make         build; programs end up in bin/arca and bin/arcad
#   make test    install dependencies, build (also with ASan+UBSan and the
#                fuzzers), run every test; ends with "N passed, N failed"
#   make demo    install dependencies, build, run the end-to-end demo
#   make asan    ASan+UBSan build in build-asan/
#   make fuzz    fuzzers in build-fuzz/, each run for FUZZ_SECONDS
#   make bench   benchmarks side by side with restic and borg
BUILD ?= build
FUZZ_SECONDS ?= 60

.PHONY: all deps test demo asan fuzz bench clean

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)
	@mkdir -p bin
	@for p in arca arcad; do \
	  if [ -x $(BUILD)/$$p/$$p ]; then ln -sf ../$(BUILD)/$$p/$$p bin/$$p; fi; done

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build-asan/build.ninja:
	meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false

build-fuzz/build.ninja:
	CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false

deps:
	scripts/install-deps

asan: build-asan/build.ninja
	ninja -C build-asan

fuzz: build-fuzz/build.ninja
	ninja -C build-fuzz
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run build-fuzz

test: deps
	$(MAKE) all asan
	$(MAKE) build-fuzz/build.ninja && ninja -C build-fuzz
	tests/run

demo: deps all
	scripts/demo

bench: deps all
	bench/run

clean:
	rm -rf build build-asan build-fuzz bin
