-- POST /donate/ for bench/checkout.py: a valid form,
-- a new donor address each time (the form is CSRF-exempt); counts 303 redirects to Stripe Checkout.
function init(args)
  port, amount = args[1], args[2]
  n, redirects = 0, 0
end

function request()
  n = n + 1
  local body = "frequency=one_time&amount=" .. amount
    .. "&name=Bench+Donor&email=donor" .. n .. "-" .. id .. "%40checkout.bench"
  return wrk.format("POST", "/donate/", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Origin"] = "https://127.0.0.1:" .. port,
    ["Referer"] = "https://127.0.0.1:" .. port .. "/donate/",
    ["X-Forwarded-Proto"] = "https",
  }, body)
end

function response(status, headers, body)
  if status == 303 and (headers["Location"] or ""):find("^https://checkout.stripe.com/") then
    redirects = redirects + 1
  end
end

local threads = {}
function setup(thread)
  thread:set("id", tostring(#threads))
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("redirects") end
  io.write(string.format("redirects to checkout %d\n", total))
end
