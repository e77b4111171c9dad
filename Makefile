# taskgate: one non-recursive Makefile.
#   make            build everything into build/
#   make run        start taskgate for real (lighttpd on 127.0.0.1:$(PORT))
#   make test       unit + integration tests; last line "N passed, N failed"
#   make bench      throughput ratios against a do-nothing FastCGI floor
#   make valgrind   the unit tests under valgrind
#   make layers     the code map check (also the first step of make test)
#   make deps       install missing Debian packages (as root), else print the command
# Switches: SANITIZE=address,undefined  STATIC=1  PREFIX=/usr/local  DESTDIR=

CC      ?= cc
PORT    ?= 8080
STATE_DIR ?= $(CURDIR)/state
PREFIX  ?= /usr/local
BUILD   ?= build

WARN    := -Wall -Wextra -Wpedantic -Wshadow -Wformat=2 -Wstrict-prototypes \
           -Wmissing-prototypes -Wpointer-arith -Wcast-qual -Wwrite-strings \
           -Wvla -Wnull-dereference -Wdouble-promotion -Wimplicit-fallthrough \
           -Wno-unused-parameter -Wno-format-truncation
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Ilib $(WARN) -Werror -MMD -MP \
           -DTASKGATE_STATE_DIR='"$(PREFIX)/var/lib/taskgate"'
LDFLAGS ?=

ifneq ($(SANITIZE),)
CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif

# Libraries: libfcgi (FastCGI), yajl (JSON), libcurl (backends), libuuid (ids),
# libcrypto (SHA-256 and constant-time compare), zlib (CRC-32 of journal records).
# STATIC=1 links libfcgi, yajl and libuuid from their .a files (libfcgi-dev,
# libyajl-dev's libyajl_s.a, uuid-dev), for hosts that lack those libraries; libcurl,
# libcrypto and libc stay shared (every host has them). A static build lives in its
# own folder, so switching STATIC never leaves a binary of the other kind behind.
ifeq ($(STATIC),1)
BUILD   := $(BUILD)/static
LIBS    := -Wl,-Bstatic -lfcgi -lyajl_s -luuid -Wl,-Bdynamic -lcurl -lcrypto -lz -lm
else
LIBS    := -lfcgi -lyajl -lcurl -luuid -lcrypto -lz -lm
endif

LIB_SRC := $(wildcard lib/*/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CGI_SRC := $(wildcard cgi-bin/*.c)
CGI_OBJ := $(CGI_SRC:%.c=$(BUILD)/%.o) $(BUILD)/cgi-bin/openapi_data.o
CRON_SRC := $(wildcard cron/*.c)
CRON_BIN := $(CRON_SRC:cron/%.c=$(BUILD)/cron/%)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
MOCK_SRC := $(wildcard tests/mock/*.c)
MOCK_BIN := $(BUILD)/tests/mock_backend
FLOOR_BIN := $(BUILD)/tests/floor.fcgi
CLAIM_BIN := $(BUILD)/tests/journal_claim

PROGRAM := $(BUILD)/taskgate.fcgi

DEB_BUILD := gcc make pkg-config libfcgi-dev libyajl-dev libcurl4-openssl-dev uuid-dev libssl-dev zlib1g-dev
# make run: the web server, curl for its readiness check, libmicrohttpd for the demo
# Cog server it starts.
DEB_RUN   := lighttpd curl libmicrohttpd-dev
# make test and make bench, besides the above.
DEB_TEST  := libcmocka-dev jq wrk valgrind procps python3 \
             chromium fonts-dejavu-core apache2 libapache2-mod-fcgid apache2-suexec-custom

.PHONY: all deps run-deps test-deps run test unit integration bench valgrind install clean format layers

# Objects are kept between builds even where they are only intermediates (the unit
# tests' and cron programs' .o files), so a second `make` relinks nothing.
.SECONDARY:

all: $(PROGRAM) $(CRON_BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC  $<"; $(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/cgi-bin/openapi_data.c: cgi-bin/openapi.json
	@mkdir -p $(dir $@)
	@{ echo '/* generated from cgi-bin/openapi.json */'; \
	   echo 'const char openapi_json[] = {'; \
	   od -An -v -tx1 $< | sed 's/[0-9a-f][0-9a-f]/0x&,/g'; \
	   echo '0};'; \
	   echo 'const unsigned long openapi_json_len = sizeof openapi_json - 1;'; } > $@

$(BUILD)/cgi-bin/openapi_data.o: $(BUILD)/cgi-bin/openapi_data.c
	$(CC) -std=c11 -c $< -o $@

$(PROGRAM): $(CGI_OBJ) $(LIB_OBJ)
	@echo "  LD  $@"; $(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/cron/%: $(BUILD)/cron/%.o $(LIB_OBJ)
	@echo "  LD  $@"; $(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/test_%: $(BUILD)/tests/unit/test_%.o $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LD  $@"; $(CC) $(LDFLAGS) -o $@ $^ $(LIBS) -lcmocka

$(MOCK_BIN): $(MOCK_SRC:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	@echo "  LD  $@"; $(CC) $(LDFLAGS) -o $@ $^ -lmicrohttpd -lcurl -lyajl -lpthread

$(FLOOR_BIN): $(BUILD)/tests/bench/floor.o
	@echo "  LD  $@"; $(CC) $(LDFLAGS) -o $@ $^ -lfcgi

$(CLAIM_BIN): $(BUILD)/tests/bench/journal_claim.o $(LIB_OBJ)
	@echo "  LD  $@"; $(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/unit/%.o: CFLAGS += -Wno-missing-prototypes
$(BUILD)/tests/mock/%.o: CFLAGS += -Wno-missing-prototypes

# need_packages LIST: installs the missing ones as root, else prints the command.
define need_packages
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages present"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "deps: installing$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; \
	else echo "deps: missing packages; run as root:"; \
	  echo "  apt-get update && apt-get install -y$$missing"; exit 1; fi
endef

# What make run needs; test-deps adds what the tests and benchmarks need.
run-deps:
	$(call need_packages,$(DEB_BUILD) $(DEB_RUN))

test-deps:
	$(call need_packages,$(DEB_BUILD) $(DEB_RUN) $(DEB_TEST))

deps: test-deps

run: run-deps all $(MOCK_BIN)
	PORT=$(PORT) STATE_DIR=$(STATE_DIR) BUILD=$(CURDIR)/$(BUILD) DEMO=$(DEMO) \
	  sh apache-conf/run-lighttpd.sh

test: test-deps all $(UNIT_BIN) $(MOCK_BIN)
	@BUILD=$(CURDIR)/$(BUILD) bash tests/run-all.sh

unit: all $(UNIT_BIN)
	@BUILD=$(CURDIR)/$(BUILD) ONLY=unit bash tests/run-all.sh

integration: all $(MOCK_BIN)
	@BUILD=$(CURDIR)/$(BUILD) ONLY=integration bash tests/run-all.sh

bench: test-deps all $(MOCK_BIN) $(FLOOR_BIN) $(CLAIM_BIN)
	@BUILD=$(CURDIR)/$(BUILD) bash tests/bench/run.sh

# The code map: which layer may include which, no cycles, the exclusive calls.
layers:
	@python3 tests/layers.py

valgrind: all $(UNIT_BIN)
	@BUILD=$(CURDIR)/$(BUILD) VALGRIND=1 ONLY=unit bash tests/run-all.sh

# install: the program, the cron programs and the configuration templates, with the
# modes suEXEC accepts (0755 folders and programs, 0644 templates: nothing group or
# world writable). It never creates or touches a state tree: `taskgate.fcgi init`,
# run as the user the web server runs taskgate as, makes one (see "Deploying" in README.md).
# With STATIC=1 it first checks (ldd) that libfcgi, yajl and libuuid are not shared.
TG_LIBDIR   = $(DESTDIR)$(PREFIX)/lib/taskgate
TG_SHAREDIR = $(DESTDIR)$(PREFIX)/share/taskgate
install: all
	@if [ "$(STATIC)" = 1 ]; then for f in $(PROGRAM) $(CRON_BIN); do \
	  if ldd $$f | grep -E 'lib(fcgi|yajl|uuid)\.so'; then \
	    echo "install: STATIC=1 but $$f links the libraries above dynamically" >&2; exit 1; fi; \
	done; echo "  STATIC: libfcgi, yajl and libuuid are linked in"; fi
	umask 022; for d in $(TG_LIBDIR) $(TG_LIBDIR)/cgi-bin $(TG_LIBDIR)/cron $(TG_SHAREDIR); do \
	  install -d -m 0755 $$d || exit 1; chmod 0755 $$d || exit 1; done
	install -m 0755 $(PROGRAM) $(TG_LIBDIR)/cgi-bin/taskgate.fcgi
	for b in $(CRON_BIN); do install -m 0755 $$b $(TG_LIBDIR)/cron/ || exit 1; done
	install -m 0644 apache-conf/*.in apache-conf/htaccess apache-conf/state.htaccess \
	  apache-conf/taskgate-413.json README.md $(TG_SHAREDIR)/

format:
	clang-format -i lib/*/*.[ch] cgi-bin/*.[ch] cron/*.c tests/unit/*.c tests/mock/*.c

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
