# A thin wrapper over meson + ninja. See README.md.
BUILD      ?= build
TESTBUILD  ?= build-test
FUZZBUILD  ?= build-fuzz

.PHONY: all build run test deps bench fuzz clean

all: build

$(BUILD)/build.ninja:
	scripts/deps.sh build
	meson setup $(BUILD) --buildtype=release -Db_ndebug=false -Dtests=disabled

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	scripts/deps.sh run
	scripts/run.sh

test:
	scripts/test.sh

bench:
	scripts/deps.sh bench
	$(MAKE) build
	bench/run.sh

fuzz:
	scripts/test.sh --fuzz-only

clean:
	rm -rf $(BUILD) $(TESTBUILD) $(FUZZBUILD)
