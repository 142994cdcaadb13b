# scripts/slurm/job_submit.lua's site policy in Python, for job_submit/modhost: the same
# decisions, the same messages. `import slurm` gives job_submit/lua's constants and logging;
# a job description is read and assigned by key.
import slurm

MAX_SHORT_MINUTES = 30
DEFAULT_MINUTES = 10


def slurm_job_submit(job_desc, part_list, submit_uid):
    if job_desc["time_limit"] == slurm.NO_VAL:
        slurm.log_info("job %s from uid %d: no time limit, %d minutes given",
                       job_desc["name"], submit_uid, DEFAULT_MINUTES)
        job_desc["time_limit"] = DEFAULT_MINUTES
    if job_desc["partition"] == "short" and job_desc["time_limit"] > MAX_SHORT_MINUTES:
        slurm.log_user("partition short takes jobs of at most %d minutes (this one asks %d)",
                       MAX_SHORT_MINUTES, job_desc["time_limit"])
        return slurm.ESLURM_INVALID_TIME_LIMIT
    if job_desc["comment"] is None:
        job_desc["comment"] = "checked by the site policy"
    return slurm.SUCCESS


def slurm_job_modify(job_desc, job_rec, part_list, modify_uid):
    if job_desc["time_limit"] != slurm.NO_VAL and job_desc["time_limit"] > 24 * 60:
        slurm.log_info("job %d: a time limit of %d minutes refused", job_rec["job_id"], job_desc["time_limit"])
        return slurm.ESLURM_INVALID_TIME_LIMIT
    return slurm.SUCCESS


slurm.log_info("site policy loaded")
