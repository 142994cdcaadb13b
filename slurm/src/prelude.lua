-- job_submit/modhost's prelude: runs before a job_submit.lua in the script's own environment,
-- and gives it what job_submit/lua gives: the `slurm` table and job descriptions read and
-- assigned by field name. The plugin calls the two wrappers at the end; they call the script's
-- slurm_job_submit and slurm_job_modify.
--@TABLES@

local logs, user_msgs = {}, {}
local format, concat = string.format, table.concat

local function logger(level)
    return function(...) logs[#logs + 1] = { level, format(...) } end
end
slurm.log_error = logger("error")
slurm.log_info = logger("info")
slurm.log_verbose = logger("verbose")
slurm.log_debug = logger("debug")
slurm.log_debug2 = logger("debug2")
slurm.log_debug3 = logger("debug3")
slurm.log_debug4 = logger("debug4")
local LEVELS = { [0] = "info", "verbose", "debug", "debug2", "debug3" }
function slurm.log(level, message)
    logs[#logs + 1] = { LEVELS[math.tointeger(level) or 0] or "debug4", tostring(message) }
end
function slurm.error(message) logs[#logs + 1] = { "error", tostring(message) } end
function slurm.user_msg(message) user_msgs[#user_msgs + 1] = tostring(message) end
function slurm.log_user(...) user_msgs[#user_msgs + 1] = format(...) end

-- Slurm's time formats: minutes, minutes:seconds, hours:minutes:seconds, days-hours,
-- days-hours:minutes, days-hours:minutes:seconds; UNLIMITED and INFINITE. NO_VAL if unreadable.
function slurm.time_str2mins(text)
    text = tostring(text)
    local lower = text:lower()
    if lower == "-1" or lower == "infinite" or lower == "unlimited" then return slurm.INFINITE end
    local days, rest = text:match("^(%d+)%-(.*)$")
    local parts = {}
    for part in (rest or text):gmatch("[^:]+") do
        if not part:match("^%d+$") then return slurm.NO_VAL end
        parts[#parts + 1] = tonumber(part)
    end
    local d, h, m, s = tonumber(days) or 0, 0, 0, 0
    if days then
        h, m, s = parts[1] or 0, parts[2] or 0, parts[3] or 0
    elseif #parts == 1 then m = parts[1]
    elseif #parts == 2 then m, s = parts[1], parts[2]
    elseif #parts == 3 then h, m, s = parts[1], parts[2], parts[3]
    else return slurm.NO_VAL end
    return d * 1440 + h * 60 + m + (s > 0 and 1 or 0)
end

-- Lua 5.1 idioms that job_submit.lua scripts use.
if unpack == nil then unpack = table.unpack end
if table.getn == nil then table.getn = function(t) return #t end end

local ALIAS = { gres = "tres_per_node", oversubscribe = "shared", ntasks_per_gpu = "ntasks_per_tres",
                pack_job_offset = "het_job_offset" }
local UNSET = false
local VALUES, CHANGES = {}, {}

-- A job description is a table holding, under keys no script can name, the message's fields
-- and the changes made; one metatable serves them all, so a call makes no closures.
-- Those keys are in the table itself, so reading them (self[CHANGES]) takes no metamethod.
-- FIELDS gives a field's place in the message's list of fields.
local JOB_DESC = {
    __index = function(self, key)
        local place = FIELDS[key]
        if place == nil then
            local alias = ALIAS[key]
            if alias ~= nil then return self[alias] end
            if key == "min_mem_per_cpu" or key == "min_mem_per_node" then
                local memory = self.pn_min_memory
                if memory == nil or memory == slurm.NO_VAL64 then return nil end
                local per_cpu = memory & slurm.MEM_PER_CPU ~= 0
                if key == "min_mem_per_cpu" and per_cpu then return memory & ~slurm.MEM_PER_CPU end
                if key == "min_mem_per_node" and not per_cpu then return memory end
            end
            return nil
        end
        local value = self[CHANGES][key]
        if value ~= nil then
            if value == UNSET then return nil end
            return value
        end
        return self[VALUES][place]
    end,
    __newindex = function(self, key, value)
        key = ALIAS[key] or key
        local kind = TEXT[key] and "s" or FIELDS[key]
        if key == "min_mem_per_cpu" or key == "min_mem_per_node" then
            kind = "n"
        elseif kind == nil then
            error(format("job_desc has no field '%s'", tostring(key)), 2)
        elseif not WRITABLE[key] then
            error(format("job_desc.%s cannot be set", key), 2)
        end
        if kind == "s" then
            if value == nil or value == "" then value = UNSET
            elseif type(value) == "number" then value = tostring(value)
            elseif type(value) ~= "string" then
                error(format("job_desc.%s: expected a string, got %s", key, type(value)), 2)
            end
        elseif math.type(value) ~= "integer" then
            local n = tonumber(value)
            if n == nil then error(format("job_desc.%s: expected a number, got %s", key, type(value)), 2) end
            value = math.tointeger(n) or math.tointeger(n < 0 and math.ceil(n) or math.floor(n))
            if value == nil then error(format("job_desc.%s: %s does not fit an integer", key, tostring(n)), 2) end
        end
        if key == "min_mem_per_cpu" then key, value = "pn_min_memory", value | slurm.MEM_PER_CPU
        elseif key == "min_mem_per_node" then key = "pn_min_memory" end
        self[CHANGES][key] = value
    end,
}

local function run(hook, msg, ...)
    if #user_msgs > 0 then user_msgs = {} end
    local changes = {}
    local rc = slurm.SUCCESS
    if hook ~= nil then
        local desc = { [VALUES] = msg.fields, [CHANGES] = changes }
        rc = hook(setmetatable(desc, JOB_DESC), ...)
        if math.type(rc) == "float" then
            rc = math.tointeger(rc) or slurm.ERROR
        elseif math.type(rc) == nil then
            logs[#logs + 1] = { "info", "non-numeric return code, taken as slurm.SUCCESS" }
            rc = slurm.SUCCESS
        end
    end
    -- What the script logged since the last call (at load, too) goes with this answer.
    local logged = nil
    if #logs > 0 then logged, logs = logs, {} end
    return { rc = rc, changes = changes, logs = logged,
             user_msg = #user_msgs > 0 and concat(user_msgs, "\n") or nil }
end

function modhost_slurm_job_submit(msg)
    return run(slurm_job_submit, msg, {}, msg.submit_uid)
end

function modhost_slurm_job_modify(msg)
    return run(slurm_job_modify, msg, msg.job_rec, {}, msg.modify_uid)
end
