/*
 * primes.c - the concurrent prime sieve, one goroutine per prime.
 *
 * A generator goroutine sends 2, 3, 4, ... into a channel. Main receives the first number
 * from that channel: it is a prime. Main then starts a filter goroutine for it, which reads
 * the generator's channel and forwards into a new channel every number the prime does not
 * divide; main goes on reading from the new channel, whose first number is the next prime,
 * and so on. After k primes the chain is
 *
 *     generator -> filter(2) -> filter(3) -> filter(5) -> ... -> filter(p_k) -> main
 *
 * and every number main sees has passed every filter, so it is prime.
 *
 * Stopping the chain. The generator would count forever, so main ends the program the
 * other way round: it closes the channel it reads from. The last filter's next send then
 * fails with GORO_ECLOSED, so that filter closes its own input channel and exits; the
 * filter before it sees the same thing, and the closing ripples back up to the generator.
 * Main waits for every goroutine to exit before it returns: nothing is leaked.
 *
 * Who frees a channel. Channels are reference counted. Each goroutine holds one reference
 * to every channel it uses and releases them as it exits, so the last user of a channel
 * frees it, whichever one that turns out to be.
 *
 *   primes [--n N]     prints the Nth prime (default: the 1000th) and the time it took
 */
#include <goro.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a filter goroutine is given. It owns one reference to each channel. */
typedef struct filter {
    goro_chan *in;  /* numbers from upstream (the generator or the previous filter) */
    goro_chan *out; /* the numbers `prime` does not divide, for downstream */
    uint64_t prime;
} filter;

/* Counts the goroutines of the chain still alive, so that main can wait for them. */
static goro_waitgroup alive = GORO_WAITGROUP_INIT;

/* The generator: sends 2, 3, 4, ... until its channel is closed. Owns one reference. */
static void generate(void *arg) {
    goro_chan *out = arg;
    for (uint64_t i = 2;; i++)
        if (goro_chan_send(out, &i) == GORO_ECLOSED)
            break; /* downstream has stopped listening */
    goro_chan_release(out);
    goro_wg_done(&alive);
}

/* A filter: forwards the numbers its prime does not divide. When downstream closes our
 * output, we close our input in turn, which stops the goroutine upstream of us. */
static void filter_run(void *arg) {
    filter *f = arg;
    uint64_t v;
    while (goro_chan_recv(f->in, &v) == 0) {
        if (v % f->prime != 0 && goro_chan_send(f->out, &v) == GORO_ECLOSED)
            break;
    }
    goro_chan_close(f->in);
    goro_chan_release(f->in);
    goro_chan_release(f->out);
    free(f);
    goro_wg_done(&alive);
}

/* The Nth prime by trial division, to check the sieve's answer. */
static uint64_t nth_prime_slowly(uint64_t n) {
    uint64_t found = 0;
    for (uint64_t c = 2;; c++) {
        int prime = 1;
        for (uint64_t d = 2; d * d <= c; d++)
            if (c % d == 0) {
                prime = 0;
                break;
            }
        if (prime && ++found == n)
            return c;
    }
}

typedef struct sieve {
    uint64_t n; /* how many primes to find */
    int status; /* what main() returns */
} sieve;

static void die(const char *what, int err) {
    fprintf(stderr, "primes: %s: %s\n", what, goro_strerror(err));
    exit(1);
}

static void primes_main(void *arg) {
    sieve *s = arg;
    int64_t start = goro_now();

    /* ch is the head of the chain: the channel main reads. Main holds one reference; the
     * generator gets its own. */
    goro_chan *ch;
    int err = goro_chan_make(&ch, sizeof(uint64_t), 0);
    if (err != 0)
        die("goro_chan_make", err);
    goro_chan_retain(ch);
    goro_wg_add(&alive, 1);
    if ((err = goro_spawn(generate, ch)) != 0)
        die("goro_spawn", err);

    uint64_t prime = 0;
    for (uint64_t i = 0; i < s->n; i++) {
        goro_chan_recv(ch, &prime); /* the first number to come out of the chain */

        /* Put a filter for this prime at the head of the chain: it reads ch and writes a
         * new channel, which becomes the head. Main hands its reference to ch over to the
         * filter (main will not read ch again) and keeps one to the new channel. */
        filter *f = malloc(sizeof *f);
        if (f == NULL) {
            fprintf(stderr, "primes: out of memory\n");
            exit(1);
        }
        f->in = ch;
        f->prime = prime;
        if ((err = goro_chan_make(&f->out, sizeof(uint64_t), 0)) != 0)
            die("goro_chan_make", err);
        ch = f->out;
        goro_chan_retain(ch); /* one reference for the filter, the made one for main */
        goro_wg_add(&alive, 1);
        if ((err = goro_spawn(filter_run, f)) != 0)
            die("goro_spawn", err);
    }
    int64_t ns = goro_now() - start;

    /* Stop the chain from its end: see the comment at the top. */
    goro_chan_close(ch);
    goro_chan_release(ch);
    goro_wg_wait(&alive);

    printf("prime #%" PRIu64 " is %" PRIu64 "\n", s->n, prime);
    printf("found in %.3f ms with %" PRIu64 " filter goroutines\n", (double)ns / 1e6, s->n);
    printf("goroutines left after shutdown: %d (main)\n", goro_numgoroutine());

    uint64_t want = nth_prime_slowly(s->n);
    if (prime != want) {
        fprintf(stderr, "primes: wrong answer: the sieve says %" PRIu64 ", want %" PRIu64 "\n",
                prime, want);
        s->status = 1;
    }
    if (goro_numgoroutine() != 1) {
        fprintf(stderr, "primes: goroutines leaked\n");
        s->status = 1;
    }
}

static void usage(void) {
    fprintf(stderr, "usage: primes [--n N]\n"
                    "  --n N  find the Nth prime, 1 <= N <= 100000 (default 1000)\n");
    exit(2);
}

int main(int argc, char **argv) {
    sieve s = {.n = 1000};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--n") != 0 || i + 1 >= argc)
            usage();
        const char *val = argv[++i];
        char *end;
        errno = 0;
        unsigned long long v = strtoull(val, &end, 10);
        if (val[0] < '0' || val[0] > '9' || *end != '\0' || errno != 0 || v < 1 || v > 100000)
            usage();
        s.n = v;
    }
    goro_config cfg = {0}; /* every CPU, or $GORO_MAXPROCS */
    int err = goro_run(&cfg, primes_main, &s);
    if (err != 0) {
        fprintf(stderr, "primes: goro_run: %s\n", goro_strerror(err));
        return 1;
    }
    return s.status;
}
