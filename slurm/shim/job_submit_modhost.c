/*
 * job_submit/modhost: the thin part of modhost's Slurm job submit plugin.
 *
 * Slurm loads this file as job_submit_modhost.so. It knows Slurm's public headers and nothing
 * of modhost: it describes job_desc_msg_t to the modhost library (each field's name, width and
 * offset, and the constants scripts use), hands it Slurm's own string allocator and log
 * functions, and forwards each hook call. Everything else (the manifest, the modules, the
 * deadline, reloads, counters) lives in libmodhost_slurm.so, which this file opens from its own
 * directory with RTLD_LOCAL, so the interpreters inside it never meet slurmctld's symbols.
 *
 * Nothing here makes slurmctld fail: init() always succeeds. When the library cannot be
 * opened, every submission is refused with the reason (fail closed), and the log says why.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>
#include <slurm/slurm_version.h>

const char plugin_name[] = "Job submit plugin running modhost modules (Lua, Python, native)";
const char plugin_type[] = "job_submit/modhost";
const uint32_t plugin_version = SLURM_VERSION_NUMBER;

/* Exported by slurmctld's libslurmfull, absent from the public headers. Strings that slurmctld
 * will free must come from its allocator. */
extern char *slurm_xstrndup(const char *str, size_t n);
extern void slurm_xfree(void **item);
extern void slurm_info(const char *fmt, ...);
extern void slurm_error(const char *fmt, ...);
extern void slurm_verbose(const char *fmt, ...);
extern void slurm_debug(const char *fmt, ...);
/* slurmctld's configuration: where slurm.conf is, whatever -f said. Weak, so that a host
 * without it still loads us (the path then comes from SLURM_CONF). */
extern slurm_conf_t slurm_conf __attribute__((weak));

/* The contract with libmodhost_slurm.so (mirrored by slurm/src/ffi.rs). */
#define MH_ABI 1
enum mh_kind { MH_STRING = 1, MH_UNSIGNED = 2, MH_SIGNED = 3 };

struct mh_field {
	const char *name;
	uint32_t kind;     /* enum mh_kind */
	uint32_t width;    /* bytes: 1, 2, 4 or 8 (strings: sizeof(char *)) */
	size_t offset;     /* in job_desc_msg_t */
	uint32_t writable; /* job_submit/lua lets scripts assign it */
};

struct mh_constant {
	const char *name;
	int64_t value; /* unsigned 64-bit values as their two's complement bits */
};

struct mh_host {
	uint32_t abi;
	const struct mh_field *fields;
	size_t n_fields;
	const struct mh_constant *constants;
	size_t n_constants;
	const char *conf_dir;
	const char *cluster_name;
	const char *state_dir; /* StateSaveLocation: where the counters are written */
	char *(*xstrndup)(const char *str, size_t n);
	void (*xfree)(void **item);
	/* level: 0 error, 1 info, 2 verbose, 3 debug */
	void (*log)(int level, const char *message);
};

typedef void *(*mh_open_fn)(const struct mh_host *host);
typedef int (*mh_submit_fn)(void *plugin, job_desc_msg_t *job_desc, uint32_t submit_uid,
			    char **err_msg);
typedef int (*mh_modify_fn)(void *plugin, job_desc_msg_t *job_desc, uint32_t job_id,
			    uint32_t modify_uid);
typedef void (*mh_close_fn)(void *plugin);

#define STR(f, w) { #f, MH_STRING, sizeof(char *), offsetof(job_desc_msg_t, f), w }
#define NUM(f, w) { #f, MH_UNSIGNED, sizeof(((job_desc_msg_t *)0)->f), offsetof(job_desc_msg_t, f), w }
#define TIME(f, w) { #f, MH_SIGNED, sizeof(time_t), offsetof(job_desc_msg_t, f), w }

/* The fields job_submit/lua reads from a job description, and whether it lets a script set
 * them. Aliases (gres, oversubscribe, ntasks_per_gpu, min_mem_per_*) are the library's. */
static const struct mh_field fields[] = {
	STR(account, 1), STR(acctg_freq, 1), STR(admin_comment, 1), STR(alloc_node, 0),
	NUM(argc, 0), STR(array_inx, 1), STR(batch_features, 1), TIME(begin_time, 1),
	NUM(bitflags, 1), NUM(boards_per_node, 0), STR(burst_buffer, 1), STR(clusters, 1),
	STR(comment, 1), STR(container, 1), NUM(contiguous, 1), NUM(cores_per_socket, 1),
	NUM(cpu_freq_min, 1), NUM(cpu_freq_max, 1), NUM(cpu_freq_gov, 1), NUM(cpus_per_task, 1),
	STR(cpus_per_tres, 1), NUM(delay_boot, 1), STR(dependency, 1), TIME(end_time, 1),
	STR(extra, 1), STR(exc_nodes, 1), STR(features, 1), NUM(group_id, 0),
	NUM(het_job_offset, 0), NUM(immediate, 1), NUM(job_id, 0), STR(licenses, 1),
	NUM(mail_type, 1), STR(mail_user, 1), NUM(max_cpus, 1), NUM(max_nodes, 1),
	STR(mem_per_tres, 1), NUM(min_cpus, 1), NUM(min_nodes, 1), STR(name, 1),
	STR(network, 0), NUM(nice, 1), NUM(ntasks_per_board, 0), NUM(ntasks_per_core, 0),
	NUM(ntasks_per_node, 1), NUM(ntasks_per_socket, 1), NUM(ntasks_per_tres, 1),
	NUM(num_tasks, 1), STR(partition, 1), STR(prefer, 1), NUM(power_flags, 1),
	NUM(pn_min_cpus, 1), NUM(pn_min_memory, 1), NUM(pn_min_tmp_disk, 1), NUM(priority, 1),
	STR(qos, 1), NUM(reboot, 1), STR(req_context, 0), STR(req_nodes, 1), NUM(req_switch, 1),
	NUM(requeue, 1), STR(reservation, 1), STR(script, 1), STR(selinux_context, 1),
	NUM(shared, 1), NUM(site_factor, 1), NUM(sockets_per_board, 0), NUM(sockets_per_node, 1),
	NUM(spank_job_env_size, 0), STR(std_err, 1), STR(std_in, 1), STR(std_out, 1),
	NUM(threads_per_core, 1), NUM(time_limit, 1), NUM(time_min, 1), STR(tres_bind, 1),
	STR(tres_freq, 1), STR(tres_per_job, 1), STR(tres_per_node, 1),
	STR(tres_per_socket, 1), STR(tres_per_task, 1), NUM(user_id, 0), NUM(wait4switch, 1),
	STR(wckey, 1), STR(work_dir, 1),
};

#define C(n) { #n, (int64_t)(n) }
/* The slurm table of job_submit/lua, with its values from this Slurm's headers. */
static const struct mh_constant constants[] = {
	{ "SUCCESS", SLURM_SUCCESS }, { "ERROR", SLURM_ERROR }, { "FAILURE", SLURM_ERROR },
	C(ESLURM_ACCESS_DENIED), C(ESLURM_ACCOUNTING_POLICY), C(ESLURM_INVALID_ACCOUNT),
	C(ESLURM_INVALID_LICENSES), C(ESLURM_INVALID_NODE_COUNT), C(ESLURM_INVALID_TIME_LIMIT),
	C(ESLURM_JOB_MISSING_SIZE_SPECIFICATION), C(ESLURM_MISSING_TIME_LIMIT),
	C(ESLURM_INVALID_PARTITION_NAME), C(ESLURM_INVALID_QOS),
	C(ALLOC_SID_ADMIN_HOLD), C(ALLOC_SID_USER_HOLD), C(INFINITE), C(INFINITE16), C(INFINITE8),
	C(INFINITE64), C(MAIL_INVALID_DEPEND), C(MAIL_JOB_BEGIN), C(MAIL_JOB_END),
	C(MAIL_JOB_FAIL), C(MAIL_JOB_REQUEUE), C(MAIL_JOB_TIME100), C(MAIL_JOB_TIME90),
	C(MAIL_JOB_TIME80), C(MAIL_JOB_TIME50), C(MAIL_JOB_STAGE_OUT), C(MEM_PER_CPU),
	C(NICE_OFFSET), C(JOB_SHARED_NONE), C(JOB_SHARED_OK), C(JOB_SHARED_USER),
	C(JOB_SHARED_MCS), C(NO_VAL64), C(NO_VAL), C(NO_VAL16), C(NO_VAL8), C(SHARED_FORCE),
	C(GRES_DISABLE_BIND), C(GRES_ENFORCE_BIND), C(KILL_INV_DEP), C(NO_KILL_INV_DEP),
	C(SPREAD_JOB), C(USE_MIN_NODES),
};

static void *library;
static void *plugin;
static mh_submit_fn submit_fn;
static mh_modify_fn modify_fn;
static mh_close_fn close_fn;
static char broken[PATH_MAX + 512]; /* why the library is not there, for every refusal */
static char conf_dir[PATH_MAX];

static void log_line(int level, const char *message)
{
	switch (level) {
	case 0: slurm_error("job_submit/modhost: %s", message); break;
	case 1: slurm_info("job_submit/modhost: %s", message); break;
	case 2: slurm_verbose("job_submit/modhost: %s", message); break;
	default: slurm_debug("job_submit/modhost: %s", message); break;
	}
}

/* The directory of slurm.conf: where job_submit/lua looks for job_submit.lua. */
static void find_conf_dir(void)
{
	const char *conf = NULL;
	if (&slurm_conf && slurm_conf.slurm_conf)
		conf = slurm_conf.slurm_conf;
	if (!conf)
		conf = getenv("SLURM_CONF");
	if (!conf)
		conf = "/etc/slurm/slurm.conf";
	snprintf(conf_dir, sizeof(conf_dir), "%s", conf);
	char *slash = strrchr(conf_dir, '/');
	if (slash)
		*slash = '\0';
	else
		snprintf(conf_dir, sizeof(conf_dir), ".");
}

int init(void)
{
	Dl_info self;
	char path[PATH_MAX];

	find_conf_dir();
	if (!dladdr((void *)&init, &self) || !self.dli_fname) {
		snprintf(broken, sizeof(broken), "cannot tell where job_submit_modhost.so is");
		goto fail;
	}
	snprintf(path, sizeof(path), "%s", self.dli_fname);
	char *slash = strrchr(path, '/');
	snprintf(slash ? slash + 1 : path, sizeof(path) - (size_t)(slash ? slash + 1 - path : 0),
		 "libmodhost_slurm.so");
	library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!library) {
		snprintf(broken, sizeof(broken), "cannot open %s: %s", path, dlerror());
		goto fail;
	}
	mh_open_fn open_fn = (mh_open_fn)dlsym(library, "modhost_slurm_open");
	submit_fn = (mh_submit_fn)dlsym(library, "modhost_slurm_submit");
	modify_fn = (mh_modify_fn)dlsym(library, "modhost_slurm_modify");
	close_fn = (mh_close_fn)dlsym(library, "modhost_slurm_close");
	if (!open_fn || !submit_fn || !modify_fn || !close_fn) {
		snprintf(broken, sizeof(broken), "%s lacks the modhost_slurm_* entry points", path);
		goto fail;
	}
	struct mh_host host = {
		.abi = MH_ABI,
		.fields = fields,
		.n_fields = sizeof(fields) / sizeof(fields[0]),
		.constants = constants,
		.n_constants = sizeof(constants) / sizeof(constants[0]),
		.conf_dir = conf_dir,
		.cluster_name = (&slurm_conf) ? slurm_conf.cluster_name : NULL,
		.state_dir = (&slurm_conf) ? slurm_conf.state_save_location : NULL,
		.xstrndup = slurm_xstrndup,
		.xfree = slurm_xfree,
		.log = log_line,
	};
	plugin = open_fn(&host);
	if (!plugin) {
		snprintf(broken, sizeof(broken), "the modhost library refused to start (see above)");
		goto fail;
	}
	return SLURM_SUCCESS;
fail:
	log_line(0, broken);
	log_line(0, "every submission will be refused until this is fixed and slurmctld restarted");
	return SLURM_SUCCESS;
}

int fini(void)
{
	if (plugin)
		close_fn(plugin);
	plugin = NULL;
	/* The library stays mapped: its threads and interpreters may still unwind. */
	return SLURM_SUCCESS;
}

extern int job_submit(job_desc_msg_t *job_desc, uint32_t submit_uid, char **err_msg)
{
	if (!plugin) {
		if (err_msg) {
			char text[PATH_MAX + 600];
			int n = snprintf(text, sizeof(text), "job_submit/modhost is not working: %s", broken);
			*err_msg = slurm_xstrndup(text, n < 0 ? 0 : (size_t)n);
		}
		return SLURM_ERROR;
	}
	return submit_fn(plugin, job_desc, submit_uid, err_msg);
}

extern int job_modify(job_desc_msg_t *job_desc, void *job_ptr, uint32_t submit_uid)
{
	(void)job_ptr; /* slurmctld's own record: its layout is not public */
	if (!plugin)
		return SLURM_ERROR;
	uint32_t job_id = job_desc->job_id;
	if (job_id == NO_VAL && job_desc->job_id_str)
		job_id = (uint32_t)strtoul(job_desc->job_id_str, NULL, 10);
	return modify_fn(plugin, job_desc, job_id, submit_uid);
}
