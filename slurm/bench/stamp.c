/*
 * Two job submit plugins that time the plugins listed between them, for the benchmark only:
 *
 *   JobSubmitPlugins=mhbench_begin,<plugins under test>,mhbench_end
 *
 * slurmctld calls job submit plugins in the listed order, one submission at a time, so the
 * begin plugin notes the time and the end plugin logs how long the plugins between took:
 * "mhbench: submit_ns=<n>". Built twice from this file: with -DSTAMP_END for the end one.
 * Each is named by its soname, so that the end plugin finds the begin one's time with
 * dlopen(RTLD_NOLOAD) whatever directory it was loaded from.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <time.h>

#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>

/* Slurm's log functions, resolved against slurmctld when the plugin is loaded. */
extern void slurm_info(const char *, ...) __attribute__((format(printf, 1, 2)));

const uint32_t plugin_version = SLURM_VERSION_NUMBER;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#ifndef STAMP_END

const char plugin_name[] = "modhost benchmark: the time before the plugins under test";
const char plugin_type[] = "job_submit/mhbench_begin";

/* The time of the submission being decided; read by the end plugin. */
uint64_t mhbench_began_ns;

int job_submit(job_desc_msg_t *job_desc, uint32_t submit_uid, char **err_msg)
{
	(void)job_desc;
	(void)submit_uid;
	(void)err_msg;
	mhbench_began_ns = now_ns();
	return SLURM_SUCCESS;
}

#else

const char plugin_name[] = "modhost benchmark: the time after the plugins under test";
const char plugin_type[] = "job_submit/mhbench_end";

static uint64_t *began;

int init(void)
{
	void *begin = dlopen("job_submit_mhbench_begin.so", RTLD_LAZY | RTLD_NOLOAD);

	if (begin)
		began = dlsym(begin, "mhbench_began_ns");
	if (!began)
		slurm_info("mhbench: job_submit/mhbench_begin is not loaded before this plugin");
	return SLURM_SUCCESS;
}

int job_submit(job_desc_msg_t *job_desc, uint32_t submit_uid, char **err_msg)
{
	uint64_t end = now_ns();

	(void)job_desc;
	(void)submit_uid;
	(void)err_msg;
	if (began && *began)
		slurm_info("mhbench: submit_ns=%llu", (unsigned long long)(end - *began));
	return SLURM_SUCCESS;
}

#endif

int job_modify(job_desc_msg_t *job_desc, void *job_ptr, uint32_t submit_uid)
{
	(void)job_desc;
	(void)job_ptr;
	(void)submit_uid;
	return SLURM_SUCCESS;
}
