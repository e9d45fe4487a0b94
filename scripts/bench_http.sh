#!/usr/bin/env bash
# bench_http.sh - the network benchmark: hello_server against Go's net/http and nginx, and
# the goro echo server against its Go twin. `make bench-http` runs this.
#
#   scripts/bench_http.sh [BUILD_DIR]        (default: build)
#
# HTTP: four servers answer `Hello, "/"` on loopback, each on a free port:
#   goro   examples/hello_server, all Ps, twice: GORO_NETPOLL=epoll and GORO_NETPOLL=io_uring
#          (the same binary; it says at exit which netpoller served, and a run that fell
#          back from io_uring to epoll counts as failed)
#   Go     bench/go/http (net/http, fmt.Fprintf(w, "Hello, %q", r.URL.Path)), all Ps
#   nginx  a generated config in a temp dir: one worker per CPU, `return 200 'Hello, "/"'`,
#          access_log off, keep-alive without a request cap, pid file and temp paths in the
#          temp dir, run in the foreground (daemon off) as the current user
# and each is loaded by `wrk -t1 -c100` and `wrk -t1 -c1000` for BENCH_DURATION seconds
# (default 5). Echo: bench/echo_server (with each netpoller) and its Go twin bench/go/echo,
# loaded by bench/echo_client (-c 100, 64-byte messages).
#
# BENCH_ROUNDS rounds (default 3); within a round the servers take turns, in an order that
# rotates from round to round, so that none always runs on a warmer or quieter machine.
# The table shows medians, the ratio io_uring/epoll (of the medians, and the median of
# the rounds' own ratios: within a round the two goro runs are close in time), and goro/Go
# and goro/nginx for the default netpoller (GORO__NETPOLL_DEFAULT in src/internal.h);
# above 1: the first served more. A second table gives each server's p99 latency (wrk
# --latency; the median over the rounds) and a third its CPU time (user + system, from
# /proc/PID/stat; nginx: its master and worker processes) per request or round trip, a
# steadier figure than throughput when the machine is shared. It starts and ends with the
# machine (CPU model, CPUs, kernel) and its load average: the machine may be shared. Servers are started here, found by the port they print (nginx: a port checked
# free in /proc/net/tcp), and stopped by their PID. Raw output: BUILD_DIR/bench/http.txt.
# Everything is on one machine: the load generator shares the CPUs with the server, so
# the figures compare servers with each other, not with other machines.
# With the defaults the whole run takes about 3 minutes.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/median.sh
. "$root/scripts/median.sh"
build=${1:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
rounds=${BENCH_ROUNDS:-3}
duration=${BENCH_DURATION:-5}
outdir=$build/bench
raw=$outdir/http.txt

case $rounds in '' | *[!0-9]* | 0)
    echo "bench_http.sh: BENCH_ROUNDS must be a positive integer" >&2
    exit 2
    ;;
esac
case $duration in '' | *[!0-9]* | 0)
    echo "bench_http.sh: BENCH_DURATION must be a positive integer (seconds)" >&2
    exit 2
    ;;
esac

for tool in wrk nginx go; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || {
        echo "bench_http.sh: $tool not found (scripts/setup.sh bench-http installs it)" >&2
        exit 1
    }
done
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

# ---------------------------------------------------------------- build

targets=(hello_server echo_server echo_client)
exes=("$build/examples/hello_server" "$outdir/echo_server" "$outdir/echo_client")
if [ ! -f "$build/CMakeCache.txt" ]; then
    echo "bench_http.sh: $build is not a configured build directory (run make first)" >&2
    exit 1
fi
cmake --build "$build" --target "${targets[@]}" >/dev/null || {
    echo "bench_http.sh: building ${targets[*]} failed" >&2
    exit 1
}
for exe in "${exes[@]}"; do
    [ -x "$exe" ] || {
        echo "bench_http.sh: $exe was not built" >&2
        exit 1
    }
done
mkdir -p "$outdir"
# As scripts/bench.sh: offline, caches in the build directory.
export GOFLAGS=-mod=mod GOCACHE=$build/go-cache GOMODCACHE=$build/go-modcache \
    GOPATH=$build/go-path GOPROXY=off GOTOOLCHAIN=local GO111MODULE=on GOWORK=off
for twin in http echo; do
    (cd "$root/bench/go" && go build -o "$outdir/go_$twin" "./$twin") || {
        echo "bench_http.sh: go build ./$twin failed" >&2
        exit 1
    }
done

# -c1000 needs more than the usual 1024 fds in wrk and in every server.
want_fds=8192
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $want_fds ]; then
    ulimit -n $want_fds 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 2100 ]; then
    echo "bench_http.sh: only $(ulimit -n) file descriptors allowed; -c1000 needs ~2100" >&2
    exit 1
fi

# ---------------------------------------------------------------- servers

tmp=$(mktemp -d)
server_pid=
cleanup() {
    # Only what this script started, by its PID.
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ncpu=$(nproc)

# A port no socket uses (IPv4 or IPv6, any state), from /proc/net/tcp*, below the
# ephemeral range (32768 and up), so that wrk's own connections cannot take it meanwhile.
free_port() {
    local port hex
    for _ in $(seq 50); do
        port=$((20000 + RANDOM % 12000))
        hex=$(printf '%04X' "$port")
        if ! awk -v h=":$hex" 'substr($2, length($2) - 4) == h { found = 1 }
                END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

# wait_port <file>: the port from a "listening on HOST:PORT" line, once the server wrote it.
wait_port() {
    local port
    for _ in $(seq 100); do
        port=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$1")
        if [ -n "$port" ]; then
            echo "$port"
            return 0
        fi
        kill -0 "$server_pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# wait_listening <port>: until something accepts on 127.0.0.1:port (nginx says nothing).
wait_listening() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$server_pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

nginx_conf() {
    local port=$1 dir=$tmp/nginx
    mkdir -p "$dir/logs" "$dir/temp"
    local user_line=""
    # As root nginx would switch its workers to nobody; keep them the current user.
    [ "$(id -u)" -eq 0 ] && user_line="user root;"
    cat >"$dir/nginx.conf" <<EOF
$user_line
daemon off;
master_process on;
worker_processes $ncpu;
worker_rlimit_nofile $want_fds;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path $dir/temp/body;
    proxy_temp_path $dir/temp/proxy;
    fastcgi_temp_path $dir/temp/fastcgi;
    uwsgi_temp_path $dir/temp/uwsgi;
    scgi_temp_path $dir/temp/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 60s;
    default_type text/plain;
    server {
        listen 127.0.0.1:$port;
        location / {
            return 200 'Hello, "/"';
        }
    }
}
EOF
}

# netpoll_of <server name>: the GORO_NETPOLL it runs with.
netpoll_of() {
    case $1 in goro-uring*) echo io_uring ;; *) echo epoll ;; esac
}

# start_server <name>: starts it in the background, sets server_pid and server_port.
start_server() {
    local name=$1 out=$tmp/$1.out
    : >"$out"
    server_port=
    case $name in
    goro | goro-uring)
        GORO_NETPOLL=$(netpoll_of "$name") "$build/examples/hello_server" --addr 127.0.0.1:0 \
            --procs 0 --max-conns 100000 >"$out" 2>"$tmp/$name.err" &
        server_pid=$!
        server_port=$(wait_port "$out")
        ;;
    go)
        "$outdir/go_http" -addr 127.0.0.1:0 >"$out" 2>"$tmp/$name.err" &
        server_pid=$!
        server_port=$(wait_port "$out")
        ;;
    nginx)
        server_port=$(free_port) || return 1
        nginx_conf "$server_port"
        "$nginx_bin" -p "$tmp/nginx/" -c "$tmp/nginx/nginx.conf" >"$out" 2>"$tmp/$name.err" &
        server_pid=$!
        wait_listening "$server_port" || server_port=
        ;;
    goro-echo | goro-uring-echo)
        GORO_NETPOLL=$(netpoll_of "$name") "$outdir/echo_server" --addr 127.0.0.1:0 \
            >"$out" 2>"$tmp/$name.err" &
        server_pid=$!
        server_port=$(wait_port "$out")
        ;;
    go-echo)
        "$outdir/go_echo" -addr 127.0.0.1:0 >"$out" 2>"$tmp/$name.err" &
        server_pid=$!
        server_port=$(wait_port "$out")
        ;;
    esac
    if [ -z "$server_port" ]; then
        echo "bench_http.sh: $name did not start:" >&2
        cat "$tmp/$name.err" "$tmp/nginx/logs/error.log" 2>/dev/null | tail -n 5 >&2
        stop_server
        return 1
    fi
}

# A goro server asked for io_uring must not have fallen back to epoll (the runtime warns).
check_netpoll() {
    local name=$1
    case $name in goro-uring*) ;; *) return 0 ;; esac
    if grep -q 'io_uring unavailable' "$tmp/$name.err" 2>/dev/null; then
        echo "  $name: $(grep 'io_uring unavailable' "$tmp/$name.err" | head -n 1)" >&2
        return 1
    fi
}

stop_server() {
    if [ -n "$server_pid" ]; then
        # nginx's master stops its workers on TERM (fast shutdown) and waits for them.
        kill -TERM "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
        server_pid=
    fi
}

# ---------------------------------------------------------------- runs

samples=$tmp/samples
: >"$samples"
failed=0
echo "# $(date '+%Y-%m-%d %H:%M:%S %z') nproc $ncpu" >"$raw"

# The server's CPU time so far (user + system, all threads), in clock ticks; for nginx,
# its master's and its workers' (the master's children, alive for the whole run).
hz=$(getconf CLK_TCK)
server_cpu() {
    local pids=$server_pid p
    [ "$1" = nginx ] && pids="$pids $(pgrep -P "$server_pid" | tr '\n' ' ')"
    for p in $pids; do cat "/proc/$p/stat" 2>/dev/null; done |
        awk '{ t += $14 + $15 } END { if (NR) print t }'
}

# record_cpu <test> <name> <ticks before> <operations per second>: appends the server's
# CPU microseconds per operation over the last run as test "cpu-<test>".
record_cpu() {
    local t1
    t1=$(server_cpu "$2")
    [ -n "$3" ] && [ -n "$t1" ] && [ -n "$4" ] || return 0
    awk -v t=$((t1 - $3)) -v hz="$hz" -v rate="$4" -v d="$duration" -v test="$1" \
        -v name="$2" -v r="$round" \
        'BEGIN { if (rate > 0) printf "cpu-%s %s %.2f %d\n", test, name, t / hz * 1e6 / (rate * d), r }' \
        >>"$samples"
}

# One wrk run against the running server: appends "<test> <server> <req/s>" to samples.
run_wrk() {
    local test=$1 name=$2 conns=$3 out rps errors t0
    t0=$(server_cpu "$name")
    out=$(wrk -t1 -c"$conns" -d"${duration}s" --latency "http://127.0.0.1:$server_port/" 2>&1)
    printf '## %s %s\n%s\n' "$name" "$test" "$out" >>"$raw"
    rps=$(echo "$out" | awk '$1 == "Requests/sec:" { print $2 }')
    errors=$(echo "$out" | awk '/Non-2xx or 3xx responses:/ { n += $NF }
        /Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }')
    if [ -z "$rps" ] || [ "$errors" -ne 0 ]; then
        echo "  $name $test: wrk failed or saw $errors errors: $(echo "$out" | tail -n 3 |
            tr '\n' ' ')" >&2
        echo "$test $name FAIL" >>"$samples"
        failed=1
        return
    fi
    echo "$test $name $rps $round" >>"$samples"
    # p99 latency in ms, from wrk's "99%  12.34ms" (us, ms or s).
    echo "$out" | awk -v t="$test" -v n="$name" -v r="$round" '$1 == "99%" {
        v = $2 + 0; u = $2; sub(/^[0-9.]+/, "", u)
        v = u == "us" ? v / 1000 : u == "s" ? v * 1000 : u == "m" ? v * 60000 : v
        printf "p99-%s %s %.3f %d\n", t, n, v, r }' >>"$samples"
    record_cpu "$test" "$name" "$t0" "$rps"
}

run_echo() {
    local name=$1 out rc rate t0
    t0=$(server_cpu "$name")
    out=$("$outdir/echo_client" -c 100 -d "$duration" -s 64 "127.0.0.1:$server_port" 2>&1)
    rc=$?
    printf '## %s echo\n%s\n' "$name" "$out" >>"$raw"
    rate=$(echo "$out" | awk '$1 == "RESULT" { print $3 }')
    if [ $rc -ne 0 ] || [ -z "$rate" ]; then
        echo "  $name echo failed (exit $rc): $(echo "$out" | tail -n 3 | tr '\n' ' ')" >&2
        echo "echo-c100 $name FAIL" >>"$samples"
        failed=1
        return
    fi
    echo "echo-c100 $name $rate $round" >>"$samples"
    record_cpu echo-c100 "$name" "$t0" "$rate"
}

cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
machine="${cpu:-unknown CPU}, $(grep -c '^processor' /proc/cpuinfo) CPUs (nproc $ncpu), $(uname -sr)"
echo "goro network benchmarks, $(date '+%Y-%m-%d %H:%M:%S %z')"
echo "machine: $machine; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# machine: $machine" >>"$raw"
echo "go: $(go version | cut -d' ' -f3-)   $("$nginx_bin" -v 2>&1 | cut -d' ' -f3)   $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2)"
echo "rounds: $rounds (BENCH_ROUNDS) of ${duration}s runs (BENCH_DURATION), medians shown"
echo

http_servers=(goro goro-uring go nginx)
echo_servers=(goro-echo goro-uring-echo go-echo)
for ((r = 0; r < rounds; r++)); do
    round=$((r + 1))
    printf 'round %d/%d:' $((r + 1)) "$rounds"
    for ((i = 0; i < ${#http_servers[@]}; i++)); do
        name=${http_servers[$(((i + r) % ${#http_servers[@]}))]}
        printf ' %s' "$name"
        if ! start_server "$name"; then
            echo "http-c100 $name FAIL" >>"$samples"
            echo "http-c1000 $name FAIL" >>"$samples"
            failed=1
            continue
        fi
        run_wrk http-c100 "$name" 100
        run_wrk http-c1000 "$name" 1000
        stop_server
        if ! check_netpoll "$name"; then
            echo "http-c100 $name FAIL" >>"$samples"
            echo "http-c1000 $name FAIL" >>"$samples"
            failed=1
        fi
    done
    for ((i = 0; i < ${#echo_servers[@]}; i++)); do
        name=${echo_servers[$(((i + r) % ${#echo_servers[@]}))]}
        printf ' %s' "$name"
        if ! start_server "$name"; then
            echo "echo-c100 ${name%-echo} FAIL" >>"$samples"
            failed=1
            continue
        fi
        run_echo "${name%-echo}"
        stop_server
        if ! check_netpoll "$name"; then
            echo "echo-c100 ${name%-echo} FAIL" >>"$samples"
            failed=1
        fi
    done
    echo
done
echo

# ---------------------------------------------------------------- report

default=$(sed -n 's/^#define GORO__NETPOLL_DEFAULT GORO_NETPOLL_\([A-Z_]*\).*/\1/p' \
    "$root/src/internal.h")
case $default in IO_URING) default=goro-uring ;; *) default=goro ;; esac
echo "machine: $machine; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v def="$default" "$median_awk"'
function show(v, failed) { return v != "" ? sprintf("%.0f", v) : (failed ? "FAIL" : "-") }
function ratio(a, b) { return a != "" && b != "" && b > 0 ? sprintf("%.2f", a / b) : "-" }
function two(v) { return v == "" ? "-" : sprintf("%.2f", v) }
# The medians of test t for the four servers, into the global m[].
function medians(t,    s, name) {
    for (s = 1; s <= 4; s++) {
        name = s == 1 ? "goro" : s == 2 ? "goro-uring" : s == 3 ? "go" : "nginx"
        m[name] = vals[t, name] == "" ? "" : median(vals[t, name])
    }
}
# io_uring/epoll for test t: the ratio of the medians, and in brackets the median of
# the ratios of the single rounds.
function uring_vs_epoll(t,    r, pr, ue) {
    pr = ""
    for (r = 1; r <= nrounds; r++)
        if ((t, "goro", r) in round && (t, "goro-uring", r) in round && round[t, "goro", r] > 0)
            pr = pr " " round[t, "goro-uring", r] / round[t, "goro", r]
    ue = ratio(m["goro-uring"], m["goro"])
    if (pr != "") ue = ue sprintf(" (%.2f)", median(pr))
    return ue
}
$3 == "FAIL" { fail[$1, $2] = 1; next }
{ vals[$1, $2] = vals[$1, $2] " " $3; round[$1, $2, $4] = $3; if ($4 > nrounds) nrounds = $4 }
END {
    fmt = "%-24s %11s %13s %10s %10s %13s %8s %10s\n"
    printf fmt, "test (per second)", "goro epoll", "goro io_uring", "Go", "nginx",
        "uring/epoll", "goro/Go", "goro/nginx"
    n = split("http-c100 http-c1000 echo-c100", tests, " ")
    split("requests, wrk -c100|requests, wrk -c1000|echo round trips, -c100", what, "|")
    for (i = 1; i <= n; i++) {
        t = tests[i]
        medians(t)
        ue = uring_vs_epoll(t)
        printf fmt, what[i], show(m["goro"], fail[t, "goro"]),
            show(m["goro-uring"], fail[t, "goro-uring"]), show(m["go"], fail[t, "go"]),
            t == "echo-c100" ? "" : show(m["nginx"], fail[t, "nginx"]), ue,
            ratio(m[def], m["go"]), t == "echo-c100" ? "" : ratio(m[def], m["nginx"])
    }
    printf "uring/epoll: ratio of the medians (median of the rounds\047 own ratios); goro/Go and goro/nginx: the default netpoller (%s)\n", def == "goro" ? "epoll" : "io_uring"
    print ""
    fmt = "%-24s %11s %13s %10s %10s %13s\n"
    printf fmt, "p99 latency, ms", "goro epoll", "goro io_uring", "Go", "nginx", "goro/nginx"
    for (i = 1; i <= 2; i++) {
        medians("p99-" tests[i])
        printf fmt, what[i], two(m["goro"]), two(m["goro-uring"]), two(m["go"]), two(m["nginx"]),
            ratio(m[def], m["nginx"])
    }
    print "(wrk --latency, the median over the rounds; goro/nginx below 1: goro answered faster)"
    print ""
    fmt = "%-24s %11s %13s %10s %10s %13s %10s\n"
    printf fmt, "server CPU us per op", "goro epoll", "goro io_uring", "Go", "nginx", "uring/epoll",
        "goro/nginx"
    for (i = 1; i <= n; i++) {
        t = "cpu-" tests[i]
        medians(t)
        ue = uring_vs_epoll(t)
        printf fmt, what[i], two(m["goro"]), two(m["goro-uring"]), two(m["go"]),
            m["nginx"] == "" ? "" : two(m["nginx"]), ue,
            t == "cpu-echo-c100" ? "" : ratio(m[def], m["nginx"])
    }
    print "(user + system time of the server process over a run, per request or round trip; lower is better)"
}' "$samples"

echo
echo "raw output: $raw"
if [ $failed -ne 0 ]; then
    echo "bench_http.sh: some runs failed (see above and $raw)" >&2
    exit 1
fi
