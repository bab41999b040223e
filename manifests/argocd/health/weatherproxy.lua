-- Argo CD health of a WeatherProxy (argocd-cm key
-- resource.customizations.health.weatherproxy.dev_WeatherProxy). Lua 5.1 (gopher-lua).
-- Reads the operator's conditions (weather_operator/status.py):
--   Progressing: no status yet, status or Ready older than the spec, no Ready condition,
--                Ready Unknown/False for a reason the operator is still working on
--                (DeploymentNotFound, ReplicasNotReady), or Degraded=True during a rollout;
--   Degraded:    Degraded=True when not rolling out (RedisUnavailable, ReplicasUnavailable)
--                or for a hard failure (ReplicaFailure, ProgressDeadlineExceeded,
--                ReconcileFailed: the API server refuses a child, InvalidSpec), or
--                Ready=False for a reason that needs a person (InvalidSpec, ReconcileFailed);
--   Healthy:     Ready=True for the current generation and not Degraded.
-- A spec that passes the CRD schema but not the operator's models is never reconciled,
-- so status.observedGeneration stays behind; a Ready=False InvalidSpec (message: the field
-- and the rule) or a hard failure written for the current generation is Degraded anyway.
-- Only the base and table libraries: Argo CD opens no string library for this script.
local hard_failures = {
  ReplicaFailure = true,
  ProgressDeadlineExceeded = true,
  ReconcileFailed = true,
  InvalidSpec = true,
}
local terminal_ready_reasons = {
  InvalidSpec = true,
  ReconcileFailed = true,
}

local function condition_of(status, type_name)
  if status.conditions == nil then
    return nil
  end
  for _, condition in ipairs(status.conditions) do
    if condition.type == type_name then
      return condition
    end
  end
  return nil
end

local function describe(condition)
  local reason = condition.reason or "Unknown"
  if condition.message ~= nil and condition.message ~= "" then
    return reason .. ": " .. condition.message
  end
  return reason
end

local hs = {}
if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile this WeatherProxy"
  return hs
end

local generation = 0
if obj.metadata ~= nil and obj.metadata.generation ~= nil then
  generation = obj.metadata.generation
end

local function of_current_generation(condition)
  return condition ~= nil and condition.observedGeneration ~= nil and condition.observedGeneration >= generation
end

local ready = condition_of(obj.status, "Ready")
local degraded = condition_of(obj.status, "Degraded")
if of_current_generation(ready) and ready.status == "False" and terminal_ready_reasons[ready.reason] then
  hs.status = "Degraded"
  hs.message = describe(ready)
  return hs
end
if of_current_generation(degraded) and degraded.status == "True" and hard_failures[degraded.reason] then
  hs.status = "Degraded"
  hs.message = describe(degraded)
  return hs
end

local observed = obj.status.observedGeneration
if observed == nil or observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end
if ready.observedGeneration ~= nil and ready.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Ready condition is from generation " .. tostring(ready.observedGeneration)
  return hs
end

if degraded ~= nil and degraded.status == "True" then
  local rolling = condition_of(obj.status, "Progressing")
  if hard_failures[degraded.reason] or rolling == nil or rolling.status ~= "True" then
    hs.status = "Degraded"
  else
    hs.status = "Progressing"
  end
  hs.message = describe(degraded)
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
elseif ready.status == "False" and terminal_ready_reasons[ready.reason] then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
hs.message = describe(ready)
return hs
