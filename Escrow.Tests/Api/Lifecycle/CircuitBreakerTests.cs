namespace Escrow.Tests.Api.Lifecycle;

/// <summary>The refund circuit breaker through the API on PostgreSQL: it limits refunds per window, alerts once, and an operator can reset it.</summary>
public sealed class CircuitBreakerTests
{
    /// <summary>An app whose breaker lets three refunds and <paramref name="refundAmountPerWindowMaxMinor"/> through per window.</summary>
    private static Task<EscrowApiFactory> StartAsync(string prefix, long refundAmountPerWindowMaxMinor) =>
        LifecycleApp.StartAsync(prefix, new Dictionary<string, string?>
        {
            ["CircuitBreaker:RefundsPerWindowMax"] = "3",
            ["CircuitBreaker:RefundAmountPerWindowMaxMinor"] = refundAmountPerWindowMaxMinor.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });

    [Fact]
    public async Task Five_deadlines_with_three_permits_per_window_refund_three_keep_two_pending_with_one_alert_until_an_operator_resets_the_breaker()
    {
        await using var app = await StartAsync("breaker_trip", refundAmountPerWindowMaxMinor: 1_000_000);
        var recipient = LifecycleApp.NewRecipientId();
        await app.PutRecipientAsync(recipient, dailyLimit: 10);
        var escrows = new List<JsonElement>();
        for (var i = 0; i < 5; i++)
        {
            escrows.Add(await app.CreateHeldEscrowAsync(recipient));
        }
        var ids = escrows.Select(e => e.Id()).ToList();
        var replyDeadline = escrows.Max(e => e.GetProperty("replyDeadline").GetDateTimeOffset());

        app.Clock.SetUtcNow(replyDeadline + TimeSpan.FromSeconds(1));
        await app.WakeAllAsync(ids);
        var statuses = await Eventually.UntilAsync(
            () => Task.WhenAll(ids.Select(async id => await app.GetEscrowAsync(id))),
            all => all.Count(e => e.Status() == "refunded") == 3 && all.Count(e => e.Status() == "refund_pending" && e.Events().Contains("refund_permit_denied")) == 2,
            "3 refunded and 2 denied a permit");
        var pending = statuses.Where(e => e.Status() == "refund_pending").Select(e => e.Id()).ToList();
        Assert.Equal(3, app.Stripe.PaymentIntents.Count(pi => pi.Status == "canceled"));
        foreach (var id in pending)
        {
            Assert.Equal("requires_capture", app.Stripe.GetPaymentIntent(escrows.Single(e => e.Id() == id).PaymentIntentId())!.Status);
        }
        Assert.Single(await app.OpenAlertsAsync("circuit_breaker_tripped"));
        var breaker = await (await app.Admin().GetAsync("/v1/admin/circuit-breaker")).Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("open", breaker.GetProperty("state").GetString());

        // The pending ones ask again after the permit retry delay and are denied again: still one alert for this trip.
        app.Clock.Advance(TimeSpan.FromMinutes(1) + TimeSpan.FromSeconds(1));
        await app.WakeAllAsync(pending);
        await Eventually.UntilAsync(
            async () => (await Task.WhenAll(pending.Select(app.GetEscrowAsync))).All(e => e.Status() == "refund_pending" && e.Events().Count(x => x == "refund_permit_denied") >= 2),
            "the pending escrows denied a second time");
        Assert.Single(await app.OpenAlertsAsync("circuit_breaker_tripped"));
        Assert.Equal(3, app.Stripe.PaymentIntents.Count(pi => pi.Status == "canceled"));

        var reset = await app.Admin().PostAsync("/v1/admin/circuit-breaker/reset", null);
        Assert.Equal(HttpStatusCode.OK, reset.StatusCode);
        app.Clock.Advance(TimeSpan.FromMinutes(1) + TimeSpan.FromSeconds(1));
        await app.WakeAllAsync(pending);
        foreach (var escrow in escrows)
        {
            var refunded = await app.WaitForStatusAsync(escrow.Id(), "refunded");
            Assert.Contains("payment_intent_cancelled", refunded.Events());
            Assert.Equal("canceled", app.Stripe.GetPaymentIntent(escrow.PaymentIntentId())!.Status);
            Assert.Single(app.SucceededCancels(escrow.PaymentIntentId()));
        }
        Assert.Empty(app.Stripe.Transfers);
        Assert.Empty(app.Stripe.Refunds);
    }

    [Fact]
    public async Task A_refund_larger_than_the_window_cap_waits_for_an_operators_approval_and_is_then_refunded()
    {
        await using var app = await StartAsync("breaker_approval", refundAmountPerWindowMaxMinor: 1_000);
        var recipient = LifecycleApp.NewRecipientId();
        await app.PutRecipientAsync(recipient, basePriceMinor: 1_000);
        var escrow = await app.CreateHeldEscrowAsync(recipient);
        var id = escrow.Id();
        Assert.True(escrow.GetProperty("amountMinor").GetInt64() > 1_000);

        app.Clock.SetUtcNow(escrow.GetProperty("replyDeadline").GetDateTimeOffset() + TimeSpan.FromSeconds(1));
        await app.WakeAllAsync([id]);
        var pending = await app.WaitForAsync(id, e => e.Status() == "refund_pending" && e.Events().Contains("refund_needs_approval"), "refund_pending awaiting approval");
        await Eventually.UntilAsync(async () => (await app.OpenAlertsAsync("refund_needs_approval")).Any(a => a.GetProperty("escrowId").GetGuid() == id), "the refund_needs_approval alert");
        Assert.Equal("requires_capture", app.Stripe.GetPaymentIntent(escrow.PaymentIntentId())!.Status);

        // Time alone does not refund it.
        app.Clock.Advance(TimeSpan.FromMinutes(2));
        await app.WakeAllAsync([id]);
        Assert.Equal("refund_pending", await app.StatusOfAsync(id));
        Assert.Equal("requires_capture", app.Stripe.GetPaymentIntent(escrow.PaymentIntentId())!.Status);
        Assert.Single(await app.OpenAlertsAsync("refund_needs_approval"));

        var approve = await app.Admin().PostAsync($"/v1/admin/escrows/{id}/approve-refund", null);
        Assert.Equal(HttpStatusCode.OK, approve.StatusCode);
        var refunded = await app.WaitForStatusAsync(id, "refunded");
        Assert.Contains("payment_intent_cancelled", refunded.Events());
        Assert.Equal("canceled", app.Stripe.GetPaymentIntent(escrow.PaymentIntentId())!.Status);
        Assert.Single(app.SucceededCancels(escrow.PaymentIntentId()));
        Assert.Empty(app.Stripe.Transfers);
        _ = pending;
    }
}
