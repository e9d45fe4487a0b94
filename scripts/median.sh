# shellcheck shell=bash
# median.sh - sourced by the benchmark scripts: $median_awk is an awk function,
# median(list), the median of a space-separated list of numbers (the mean of the two middle
# ones for an even count). Prepend it to an awk program: awk "$median_awk"'...'.
# shellcheck disable=SC2034 # used by the scripts that source this
median_awk='
function median(list,    a, n, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++)
        for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
'
