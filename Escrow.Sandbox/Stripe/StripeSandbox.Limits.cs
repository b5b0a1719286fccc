namespace Escrow.Sandbox;

/// <summary>
/// Stripe's limits, emulated: minimum charge amounts, the expiry of held authorisations, the API's rate limit (with
/// the counts behind <c>GET /_sandbox/stripe/stats</c>), and the account's webhook endpoints.
/// </summary>
public sealed partial class StripeSandbox
{
    /// <summary>Stripe's minimum charge per currency, in the API's minor units; other currencies are not checked.</summary>
    public static IReadOnlyDictionary<string, long> MinimumChargeAmounts { get; } = new Dictionary<string, long>(StringComparer.Ordinal)
    {
        ["usd"] = 50, ["aed"] = 200, ["aud"] = 50, ["bgn"] = 100, ["brl"] = 50, ["cad"] = 50, ["chf"] = 50,
        ["czk"] = 1500, ["dkk"] = 250, ["eur"] = 50, ["gbp"] = 30, ["hkd"] = 400, ["huf"] = 17500, ["inr"] = 50,
        ["jpy"] = 50, ["mxn"] = 1000, ["myr"] = 200, ["nok"] = 300, ["nzd"] = 50, ["pln"] = 200, ["ron"] = 200,
        ["sek"] = 300, ["sgd"] = 50, ["thb"] = 1000,
    };

    // Rate limits are about real seconds, whatever clock the sandbox's objects are dated with.
    private static readonly TimeProvider WallClock = TimeProvider.System;

    private readonly PriorityQueue<string, long> _authorisationExpiries = new();
    private readonly PersistentMap<SandboxWebhookEndpoint> _webhookEndpoints;
    private ITimer? _expiryTimer;
    private long _statsRequests;
    private long _statsRateLimited;
    private int _statsMaxInOneSecond;
    private long _statsSecond = -1;
    private int _statsInSecond;

    public IReadOnlyList<SandboxWebhookEndpoint> WebhookEndpoints => Snapshot(_webhookEndpoints);

    /// <summary>The emulated API's requests since start or <see cref="Reset"/>.</summary>
    public SandboxStripeStats Stats
    {
        get { lock (_gate) { return new SandboxStripeStats(_statsRequests, _statsRateLimited, _statsMaxInOneSecond); } }
    }

    private static void RequireMinimumChargeAmount(long amount, string currency)
    {
        if (MinimumChargeAmounts.TryGetValue(currency, out var minimum) && amount < minimum)
        {
            throw new StripeApiException(400, "invalid_request_error", "amount_too_small",
                $"Amount must be at least {minimum.ToString(CultureInfo.InvariantCulture)} {currency} (in minor units).", "amount");
        }
    }

    /// <summary>
    /// Counts one request of the emulated API in its calendar second; false when <see cref="SandboxOptions.RateLimitPerSecond"/>
    /// requests were already answered in that second, and this one is to be refused with 429.
    /// </summary>
    internal bool AdmitRequest()
    {
        var second = WallClock.GetUtcNow().ToUnixTimeSeconds();
        lock (_gate)
        {
            if (second != _statsSecond)
            {
                _statsSecond = second;
                _statsInSecond = 0;
            }

            _statsRequests++;
            _statsInSecond++;
            _statsMaxInOneSecond = Math.Max(_statsMaxInOneSecond, _statsInSecond);
            var limit = _options.RateLimitPerSecond;
            if (limit > 0 && _statsInSecond > limit)
            {
                _statsRateLimited++;
                return false;
            }

            return true;
        }
    }

    private void ResetStats()
    {
        _statsRequests = 0;
        _statsRateLimited = 0;
        _statsMaxInOneSecond = 0;
        _statsSecond = -1;
        _statsInSecond = 0;
    }

    // ---- authorisation expiry ----

    /// <summary>
    /// Expires a held authorisation now, as the card network does after 7 days: status canceled, cancellation_reason
    /// expired, event payment_intent.canceled. Null when there is no such PaymentIntent or it holds no authorisation.
    /// </summary>
    public SandboxPaymentIntent? ExpireAuthorisation(string paymentIntentId)
    {
        lock (_gate)
        {
            return _paymentIntents.TryGetValue(paymentIntentId, out var pi) && pi.Status == "requires_capture"
                ? ExpireLocked(pi)
                : null;
        }
    }

    private SandboxPaymentIntent ExpireLocked(SandboxPaymentIntent pi)
    {
        if (pi.LatestCharge is { } chargeId && _charges.TryGetValue(chargeId, out var charge) && !charge.Captured)
        {
            _charges[chargeId] = charge with { AmountRefunded = charge.Amount, Refunded = true };
        }

        pi = pi with { Status = "canceled", AmountCapturable = 0, CancellationReason = "expired" };
        _paymentIntents[pi.Id] = pi;
        AddEvent("payment_intent.canceled", pi.Id, StripeJson.Of(pi), null);
        return pi;
    }

    private void ScheduleAuthorisationExpiry(string paymentIntentId, long authorisedAt)
    {
        var expiresAt = authorisedAt + (long)_options.AuthorisationLifetime.TotalSeconds;
        var earliest = _authorisationExpiries.TryPeek(out _, out var due) ? due : long.MaxValue;
        _authorisationExpiries.Enqueue(paymentIntentId, expiresAt);
        if (expiresAt < earliest)
        {
            ArmExpiryTimer(expiresAt);
        }
    }

    private void ArmExpiryTimer(long dueAt)
    {
        var delay = TimeSpan.FromSeconds(Math.Max(1, dueAt - Now()));
        if (_expiryTimer is null)
        {
            _expiryTimer = _time.CreateTimer(_ => ExpireDue(), null, delay, Timeout.InfiniteTimeSpan);
        }
        else
        {
            _expiryTimer.Change(delay, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>The timer's work: every authorisation past its lifetime and still held is expired.</summary>
    private void ExpireDue()
    {
        lock (_gate)
        {
            var now = Now();
            while (_authorisationExpiries.TryPeek(out var id, out var due) && due <= now)
            {
                _authorisationExpiries.Dequeue();
                if (_paymentIntents.TryGetValue(id, out var pi) && pi.Status == "requires_capture")
                {
                    ExpireLocked(pi);
                }
            }

            if (_authorisationExpiries.TryPeek(out _, out var next))
            {
                ArmExpiryTimer(next);
            }
        }
    }

    // ---- webhook endpoints ----

    internal StripeResponse CreateWebhookEndpoint(StripeForm form)
    {
        var url = form.RequiredString("url");
        if (!Uri.TryCreate(url, UriKind.Absolute, out _))
        {
            throw new StripeApiException(400, "invalid_request_error", "url_invalid", "Invalid URL: " + url, "url");
        }

        var events = form.List("enabled_events");
        if (events.Count == 0)
        {
            throw StripeApiException.MissingParam("enabled_events");
        }

        var endpoint = new SandboxWebhookEndpoint
        {
            Id = NewId("we"),
            Url = url,
            ApiVersion = form.String("api_version") ?? _options.ApiVersion,
            EnabledEvents = events,
            Connect = form.Bool("connect"),
            Created = Now(),
        };
        _webhookEndpoints[endpoint.Id] = endpoint;
        return StripeResponse.Ok(StripeJson.Of(endpoint));
    }

    internal StripeResponse ListWebhookEndpoints(StripeForm form)
    {
        var limit = form.Limit();
        var matching = Page(_webhookEndpoints.Values.Reverse().ToList(), e => e.Id, form);
        return StripeResponse.Ok(StripeJson.List("/v1/webhook_endpoints",
            matching.Take(limit).Select(StripeJson.Of), matching.Count > limit));
    }

    internal StripeResponse DeleteWebhookEndpoint(string id) =>
        _webhookEndpoints.Remove(id)
            ? StripeResponse.Ok(new JsonObject { ["id"] = id, ["object"] = "webhook_endpoint", ["deleted"] = true })
            : throw StripeApiException.Missing("webhook_endpoint", id, "id");
}
