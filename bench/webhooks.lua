-- Signed Stripe events for bench/webhooks.py: each wrk thread cycles over its own file of
-- "<Stripe-Signature>\t<body>" lines and counts what it sent and what was answered 200.
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  signatures, bodies = {}, {}
  for line in io.lines(args[1] .. "-" .. id .. ".tsv") do
    local tab = line:find("\t", 1, true)
    table.insert(signatures, line:sub(1, tab - 1))
    table.insert(bodies, line:sub(tab + 1))
  end
  sent, answered, ok = 0, 0, 0
end

function request()
  local i = (sent % #bodies) + 1
  sent = sent + 1
  return wrk.format("POST", "/webhooks/stripe/", {
    ["Content-Type"] = "application/json",
    ["Stripe-Signature"] = signatures[i],
    ["X-Forwarded-Proto"] = "https",
  }, bodies[i])
end

function response(status, headers, body)
  answered = answered + 1
  if status == 200 then ok = ok + 1 end
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    io.write(string.format("thread %d sent %d answered %d ok %d\n",
      thread:get("id"), thread:get("sent"), thread:get("answered"), thread:get("ok")))
  end
end
