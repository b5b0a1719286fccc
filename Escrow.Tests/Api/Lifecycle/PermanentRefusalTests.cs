namespace Escrow.Tests.Api.Lifecycle;

/// <summary>Stripe refusing a money movement for good, through the sandbox on PostgreSQL: one alert, no retry loop.</summary>
public sealed class PermanentRefusalTests
{
    [Fact]
    public async Task A_cancel_Stripe_refuses_for_good_is_asked_once_alerted_once_and_an_operator_refund_then_cancels_under_a_new_key()
    {
        await using var app = await LifecycleApp.StartAsync("refusal_cancel");
        var (escrow, id) = await app.HeldEscrowOfNewRecipientAsync();
        var pi = escrow.PaymentIntentId();
        var cancelPath = $"/v1/payment_intents/{pi}/cancel";
        app.Stripe.InjectFault(SandboxOperations.PaymentIntentsCancel, SandboxFaultKind.Refused, 1);

        app.Clock.SetUtcNow(escrow.GetProperty("replyDeadline").GetDateTimeOffset());
        var stopped = await app.WaitForAsync(id, e => e.Events().Contains("cancel_rejected"), "cancel_rejected in history");
        Assert.Equal("refund_pending", stopped.Status());
        Assert.True(stopped.GetProperty("needsOperator").GetBoolean());
        var entry = stopped.GetProperty("history").EnumerateArray().Single(h => h.GetProperty("event").GetString() == "cancel_rejected");
        Assert.Equal("payment_intent_unexpected_state", entry.GetProperty("detail").GetString());
        var alert = Assert.Single(await app.OpenAlertsAsync("money_effect_rejected"), a => a.GetProperty("escrowId").GetGuid() == id);
        Assert.Equal("critical", alert.GetProperty("severity").GetString());
        Assert.Contains("cancel", alert.GetProperty("details").GetString(), StringComparison.Ordinal);
        var asked = app.Stripe.Requests.Count(r => r.Path == cancelPath);
        Assert.Equal(1, asked);

        // Days of reminder ticks later, Stripe has not been asked again and there is still one alert.
        for (var day = 1; day <= 3; day++)
        {
            app.Clock.Advance(TimeSpan.FromDays(1));
            await app.WakeAllAsync([id]);
        }
        Assert.Equal(asked, app.Stripe.Requests.Count(r => r.Path == cancelPath));
        Assert.Single(await app.OpenAlertsAsync("money_effect_rejected"), a => a.GetProperty("escrowId").GetGuid() == id);
        Assert.Equal("refund_pending", await app.StatusOfAsync(id));

        var refund = await app.Admin().PostAsJsonAsync($"/v1/admin/escrows/{id}/refund", new { reason = "checked the PaymentIntent in Stripe" });
        Assert.True(refund.IsSuccessStatusCode, await refund.Content.ReadAsStringAsync());
        var refunded = await app.WaitForStatusAsync(id, "refunded");
        Assert.False(refunded.GetProperty("needsOperator").GetBoolean());
        Assert.Equal("canceled", app.Stripe.GetPaymentIntent(pi)!.Status);
        Assert.Contains(app.Stripe.Requests, r => r.Path == cancelPath && r.IdempotencyKey == $"escrow/{id:D}/cancel/1" && r.StatusCode == (int)HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_refund_Stripe_refuses_for_good_is_asked_once_and_alerted_once()
    {
        await using var app = await LifecycleApp.StartAsync("refusal_refund");
        var id = await app.CapturedAwaitingPayoutSetupAsync();
        app.Stripe.InjectFault(SandboxOperations.RefundsCreate, SandboxFaultKind.Refused, 1);

        var refund = await app.Admin().PostAsJsonAsync($"/v1/admin/escrows/{id}/refund", new { reason = "the recipient never set up payouts" });
        Assert.True(refund.IsSuccessStatusCode, await refund.Content.ReadAsStringAsync());
        var stopped = await app.WaitForAsync(id, e => e.Events().Contains("refund_rejected"), "refund_rejected in history");
        Assert.True(stopped.GetProperty("needsOperator").GetBoolean());
        var asked = app.Stripe.Requests.Count(r => r.Operation == SandboxOperations.RefundsCreate);
        Assert.Equal(1, asked);

        for (var day = 1; day <= 3; day++)
        {
            app.Clock.Advance(TimeSpan.FromDays(1));
            await app.WakeAllAsync([id]);
        }
        Assert.Equal(asked, app.Stripe.Requests.Count(r => r.Operation == SandboxOperations.RefundsCreate));
        var alert = Assert.Single(await app.OpenAlertsAsync("money_effect_rejected"), a => a.GetProperty("escrowId").GetGuid() == id);
        Assert.Contains("refund", alert.GetProperty("details").GetString(), StringComparison.Ordinal);
        Assert.Empty(app.Stripe.Refunds);
    }
}
