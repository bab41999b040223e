-- Argo CD health of an ApiKey (argocd-cm key
-- resource.customizations.health.weatherproxy.dev_ApiKey). Lua 5.1 (gopher-lua).
--   Progressing: no status yet, status older than the spec, no Ready condition, Ready
--                Unknown, or Ready=False for a transient reason;
--   Healthy:     Ready=True (the key's hash is published to its fleet);
--   Degraded:    Ready=False because the key cannot work until a person acts: it expired
--                (Expired), is disabled (Disabled), names a missing Secret (SecretNotFound)
--                or WeatherProxy (ProxyNotFound), fails the operator's models (InvalidSpec:
--                the field and the rule), or the API server refuses its writes
--                (ReconcileFailed).
-- ProxyNotFound stays Degraded although it heals itself when the fleet appears (the operator
-- then re-reconciles the key and Argo CD re-reads the health): a misspelt proxyRef would
-- otherwise show Progressing forever, and a key applied with its fleet is Degraded only for
-- the moment before the operator sees the fleet.
-- A Ready=False for a terminal reason written for the current generation is Degraded even
-- when status.observedGeneration is older (an invalid spec is never reconciled).
-- Only the base and table libraries: Argo CD opens no string library for this script.
local terminal_reasons = {
  Expired = true,
  Disabled = true,
  ProxyNotFound = true,
  SecretNotFound = true,
  InvalidSpec = true,
  ReconcileFailed = true,
}

local hs = {}
if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile this ApiKey"
  return hs
end

local generation = 0
if obj.metadata ~= nil and obj.metadata.generation ~= nil then
  generation = obj.metadata.generation
end

local ready = nil
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Ready" then
      ready = condition
    end
  end
end

local function describe(condition)
  local text = condition.reason or "Unknown"
  if condition.message ~= nil and condition.message ~= "" then
    text = text .. ": " .. condition.message
  end
  return text
end

if ready ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration >= generation
    and ready.status == "False" and terminal_reasons[ready.reason] then
  hs.status = "Degraded"
  hs.message = describe(ready)
  return hs
end

-- The Ready condition carries observedGeneration too; either tells what was reconciled.
local observed = obj.status.observedGeneration
if observed == nil and ready ~= nil then
  observed = ready.observedGeneration
end
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

local reason = ready.reason or "Unknown"
local detail = describe(ready)

if ready.observedGeneration ~= nil and ready.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Ready condition is from generation " .. tostring(ready.observedGeneration)
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = detail
  return hs
end
if ready.status == "False" and terminal_reasons[reason] then
  hs.status = "Degraded"
  hs.message = detail
  return hs
end
hs.status = "Progressing"
hs.message = detail
return hs
