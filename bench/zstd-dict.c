/*
 * zstd-dict: does a dictionary trained on mail pay off? (issue 2)
 *   zstd-dict LEVEL FILE...   (file names on stdin if none are given)
 * Trains a dictionary on every 10th file (as Arca would, on a sample of a
 * repository's first messages), then compresses every file on its own, as
 * Arca stores objects, with and without the dictionary, and prints the
 * stored sizes and the time each took.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zdict.h>
#include <zstd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	int level = argc > 1 ? atoi(argv[1]) : 3;
	size_t cap = 1 << 16, n = 0;
	char **names = malloc(cap * sizeof(char *));
	char line[4096];
	if (argc > 2) {
		for (int i = 2; i < argc; i++)
			names[n++] = argv[i];
	} else {
		while (fgets(line, sizeof(line), stdin)) {
			line[strcspn(line, "\n")] = 0;
			if (n == cap)
				names = realloc(names, (cap *= 2) * sizeof(char *));
			names[n++] = strdup(line);
		}
	}
	/* load everything under 1 MiB (larger messages are chunked anyway) */
	char **data = calloc(n, sizeof(char *));
	size_t *len = calloc(n, sizeof(size_t)), total = 0, m = 0;
	for (size_t i = 0; i < n; i++) {
		FILE *f = fopen(names[i], "rb");
		if (!f)
			continue;
		fseek(f, 0, SEEK_END);
		long sz = ftell(f);
		fseek(f, 0, SEEK_SET);
		if (sz <= 0 || sz > (1 << 20)) {
			fclose(f);
			continue;
		}
		data[m] = malloc(sz);
		len[m] = fread(data[m], 1, sz, f);
		total += len[m++];
		fclose(f);
	}
	/* training sample: every 10th message, at most 100 MiB */
	size_t tot = 0, k = 0;
	size_t *slen = calloc(m, sizeof(size_t));
	char *samples = malloc(100 << 20);
	for (size_t i = 0; i < m && tot + len[i] < (100u << 20); i += 10) {
		memcpy(samples + tot, data[i], len[i]);
		slen[k++] = len[i];
		tot += len[i];
	}
	size_t dcap = 112 << 10;
	char *dict = malloc(dcap);
	double t0 = now();
	size_t dsz = ZDICT_trainFromBuffer(dict, dcap, samples, slen, (unsigned)k);
	double ttrain = now() - t0;
	if (ZDICT_isError(dsz)) {
		fprintf(stderr, "train: %s\n", ZDICT_getErrorName(dsz));
		return 1;
	}
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	ZSTD_CDict *cd = ZSTD_createCDict(dict, dsz, level);
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	ZSTD_DDict *dd = ZSTD_createDDict(dict, dsz);
	char *out = malloc(ZSTD_compressBound(1 << 20)), *back = malloc(1 << 20);
	size_t plain = 0, withd = 0;
	double tp = 0, td = 0, tdp = 0, tdd = 0;
	for (size_t i = 0; i < m; i++) {
		double a = now();
		size_t c1 = ZSTD_compressCCtx(cc, out, ZSTD_compressBound(len[i]), data[i], len[i], level);
		double b = now();
		ZSTD_decompressDCtx(dc, back, 1 << 20, out, c1);
		double c = now();
		size_t c2 = ZSTD_compress_usingCDict(cc, out, ZSTD_compressBound(len[i]), data[i], len[i], cd);
		double d = now();
		ZSTD_decompress_usingDDict(dc, back, 1 << 20, out, c2, dd);
		double e = now();
		plain += c1 < len[i] ? c1 : len[i];
		withd += c2 < len[i] ? c2 : len[i];
		tp += b - a;
		tdp += c - b;
		td += d - c;
		tdd += e - d;
	}
	printf("%zu messages, %.1f MiB raw; level %d; dictionary %zu bytes trained on %zu messages in %.2f s\n",
	       m, total / 1048576.0, level, dsz, k, ttrain);
	printf("%-22s %12s %8s %14s %14s\n", "", "stored MiB", "ratio", "compress MB/s", "decompress MB/s");
	printf("%-22s %12.1f %8.3f %14.0f %14.0f\n", "zstd", plain / 1048576.0, (double)plain / total,
	       total / tp / 1e6, total / tdp / 1e6);
	printf("%-22s %12.1f %8.3f %14.0f %14.0f\n", "zstd + dictionary", withd / 1048576.0,
	       (double)withd / total, total / td / 1e6, total / tdd / 1e6);
	printf("dictionary saves %.1f%% of the stored bytes\n", 100.0 * (plain - withd) / plain);
	return 0;
}
