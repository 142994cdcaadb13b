-- A site's submission policy, in the shape of the job_submit.lua files Slurm admins keep:
-- it runs unchanged under Slurm's job_submit/lua and under modhost's job_submit/modhost.

local MAX_SHORT_MINUTES = 30
local DEFAULT_MINUTES = 10

function slurm_job_submit(job_desc, part_list, submit_uid)
    if job_desc.time_limit == slurm.NO_VAL then
        slurm.log_info("job %s from uid %d: no time limit, %d minutes given",
                       tostring(job_desc.name), submit_uid, DEFAULT_MINUTES)
        job_desc.time_limit = DEFAULT_MINUTES
    end
    if job_desc.partition == "short" and job_desc.time_limit > MAX_SHORT_MINUTES then
        slurm.log_user("partition short takes jobs of at most %d minutes (this one asks %d)",
                       MAX_SHORT_MINUTES, job_desc.time_limit)
        return slurm.ESLURM_INVALID_TIME_LIMIT
    end
    if job_desc.comment == nil then
        job_desc.comment = "checked by the site policy"
    end
    return slurm.SUCCESS
end

function slurm_job_modify(job_desc, job_rec, part_list, modify_uid)
    if job_desc.time_limit ~= slurm.NO_VAL and job_desc.time_limit > 24 * 60 then
        slurm.log_info("job %d: a time limit of %d minutes refused", job_rec.job_id, job_desc.time_limit)
        return slurm.ESLURM_INVALID_TIME_LIMIT
    end
    return slurm.SUCCESS
end

slurm.log_info("site policy loaded")
return slurm.SUCCESS
