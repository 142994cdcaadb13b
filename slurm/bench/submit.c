/*
 * modhost-submit-bench: submits held batch jobs to the slurmctld of $SLURM_CONF through
 * libslurm (one RPC each, no fork per job as with sbatch), from several threads if asked,
 * then cancels them. It prints one JSON line:
 *
 *   {"submitted":N,"refused":R,"seconds":S,"latency_us":{"p50":..,"p99":..,"mean":..}}
 *
 * Usage: modhost-submit-bench <jobs> <threads> [partition]
 *
 * The jobs are held (priority 0), so that nothing runs and the scheduler stays idle: what is
 * measured is submission alone, the job submit plugin's hook included.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>

struct worker {
	int jobs;
	const char *partition;
	uint32_t *ids;     /* accepted job ids, `accepted` of them */
	int accepted;
	int refused;
	double *latency_us; /* one per submission */
	char first_error[256];
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *submit_all(void *arg)
{
	struct worker *w = arg;
	char cwd[4096];
	char *env[] = {"MODHOST_BENCH=1", NULL};
	char script[] = "#!/bin/sh\ntrue\n";
	char name[] = "bench";

	if (!getcwd(cwd, sizeof(cwd)))
		strcpy(cwd, "/tmp");
	for (int i = 0; i < w->jobs; i++) {
		job_desc_msg_t desc;
		submit_response_msg_t *resp = NULL;
		double start;

		slurm_init_job_desc_msg(&desc);
		desc.name = name;
		desc.script = script;
		desc.environment = env;
		desc.env_size = 1;
		desc.work_dir = cwd;
		desc.std_out = "/dev/null";
		desc.user_id = getuid();
		desc.group_id = getgid();
		desc.min_nodes = 1;
		desc.priority = 0; /* held */
		if (w->partition)
			desc.partition = (char *)w->partition;
		start = now_s();
		if (slurm_submit_batch_job(&desc, &resp) == SLURM_SUCCESS) {
			w->latency_us[i] = (now_s() - start) * 1e6;
			w->ids[w->accepted++] = resp->job_id;
		} else {
			w->latency_us[i] = (now_s() - start) * 1e6;
			if (!w->refused)
				snprintf(w->first_error, sizeof(w->first_error), "%s",
					 slurm_strerror(slurm_get_errno()));
			w->refused++;
		}
		if (resp)
			slurm_free_submit_response_response_msg(resp);
	}
	return NULL;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int jobs, threads;
	const char *partition;
	struct worker *workers;
	pthread_t *tids;
	double *all, start, seconds, sum = 0;
	int n = 0, refused = 0;

	if (argc < 3 || (jobs = atoi(argv[1])) <= 0 || (threads = atoi(argv[2])) <= 0) {
		fprintf(stderr, "usage: %s <jobs> <threads> [partition]\n", argv[0]);
		return 2;
	}
	partition = argc > 3 ? argv[3] : NULL;
	slurm_init(NULL);
	workers = calloc(threads, sizeof(*workers));
	tids = calloc(threads, sizeof(*tids));
	for (int t = 0; t < threads; t++) {
		workers[t].jobs = jobs / threads + (t < jobs % threads);
		workers[t].partition = partition;
		workers[t].ids = calloc(workers[t].jobs + 1, sizeof(uint32_t));
		workers[t].latency_us = calloc(workers[t].jobs + 1, sizeof(double));
	}
	start = now_s();
	for (int t = 0; t < threads; t++)
		pthread_create(&tids[t], NULL, submit_all, &workers[t]);
	for (int t = 0; t < threads; t++)
		pthread_join(tids[t], NULL);
	seconds = now_s() - start;

	all = calloc(jobs, sizeof(double));
	for (int t = 0; t < threads; t++) {
		for (int i = 0; i < workers[t].jobs; i++) {
			all[n++] = workers[t].latency_us[i];
			sum += workers[t].latency_us[i];
		}
		refused += workers[t].refused;
		if (workers[t].refused)
			fprintf(stderr, "refused: %s\n", workers[t].first_error);
	}
	qsort(all, n, sizeof(double), by_value);
	printf("{\"submitted\":%d,\"refused\":%d,\"seconds\":%.6f,"
	       "\"latency_us\":{\"p50\":%.1f,\"p99\":%.1f,\"mean\":%.1f}}\n",
	       jobs - refused, refused, seconds, all[n / 2], all[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1],
	       sum / n);
	fflush(stdout);

	/* Untimed: the held jobs go away, so that the next measurement starts from the same queue. */
	for (int t = 0; t < threads; t++)
		for (int i = 0; i < workers[t].accepted; i++)
			slurm_kill_job(workers[t].ids[i], SIGKILL, 0);
	slurm_fini();
	return refused ? 1 : 0;
}
