namespace Escrow.Tests.Api.Lifecycle;

/// <summary>An operator's refund of a released escrow, through the sandbox on PostgreSQL.</summary>
public sealed class RefundAfterReleaseTests
{
    private static async Task<(Guid Id, string TransferId, string PaymentIntentId)> ReleasedAsync(EscrowApiFactory app, string recipient)
    {
        var escrow = await app.CreateHeldEscrowAsync(recipient);
        var id = escrow.Id();
        (await app.ReplyAsync(id)).EnsureSuccessStatusCode();
        var released = await app.WaitForStatusAsync(id, "released");
        return (id, released.GetProperty("transferId").GetString()!, escrow.PaymentIntentId());
    }

    private static IReadOnlyList<SandboxEmail> MailsOf(EscrowApiFactory app, Guid id, string tag) =>
        [.. app.Postmark.Outbox.Where(m => m.Tag == tag && m.Metadata.GetValueOrDefault("escrow_id") == id.ToString("D"))];

    [Fact]
    public async Task A_refund_after_release_reverses_the_share_then_refunds_the_charge_audits_and_tells_both_parties()
    {
        await using var app = await LifecycleApp.StartAsync("refund_after_release");
        var recipient = await app.PayableRecipientAsync();
        var (id, transferId, pi) = await ReleasedAsync(app, recipient);

        var refund = await app.Admin().PostAsJsonAsync($"/v1/admin/escrows/{id}/refund", new { reason = "the reply was empty, ticket 7" });
        Assert.True(refund.IsSuccessStatusCode, await refund.Content.ReadAsStringAsync());
        var refunded = await app.WaitForStatusAsync(id, "refunded");

        // Stripe: one reversal of the whole share under the escrow's key, then one refund of the whole charge.
        var reversal = Assert.Single(app.Stripe.TransferReversals);
        Assert.Equal(transferId, reversal.Transfer);
        Assert.Equal(1_125, reversal.Amount);
        Assert.Contains(app.Stripe.Requests, r => r.Operation == SandboxOperations.TransferReversalsCreate && r.IdempotencyKey == $"escrow/{id:D}/reversal/{transferId}" && r.StatusCode == 200);
        var stripeRefund = Assert.Single(app.Stripe.Refunds);
        Assert.Equal(pi, stripeRefund.PaymentIntent);
        Assert.Equal(1_500, stripeRefund.Amount);
        // The refund was asked for only after the reversal was answered.
        var requests = app.Stripe.Requests.ToList();
        Assert.True(requests.FindIndex(r => r.Operation == SandboxOperations.TransferReversalsCreate && r.StatusCode == 200)
            < requests.FindIndex(r => r.Operation == SandboxOperations.RefundsCreate));

        var events = refunded.Events();
        Assert.Equal(["operator_refund", "share_reversed", "payment_refunded"], events.SkipWhile(e => e != "operator_refund").ToArray());
        var history = refunded.GetProperty("history").EnumerateArray().ToList();
        Assert.Contains(history, h => h.GetProperty("event").GetString() == "share_reversed" && h.GetProperty("detail").GetString()!.Contains(reversal.Id, StringComparison.Ordinal));
        Assert.Contains(history, h => h.GetProperty("event").GetString() == "payment_refunded" && h.GetProperty("detail").GetString() == stripeRefund.Id);

        var audit = Assert.Single(await app.Services.GetRequiredService<IEscrowStore>().GetAuditAsync(id, 50), a => a.Action == "escrow.refund");
        Assert.Equal("the reply was empty, ticket 7", audit.Reason);

        var toSender = await Eventually.UntilAsync(() => Task.FromResult(MailsOf(app, id, "refund")), m => m.Count == 1, "the sender's refund e-mail");
        Assert.Contains("was paid; the platform has since refunded your payment in full", toSender[0].TextBody, StringComparison.Ordinal);
        var toRecipient = await Eventually.UntilAsync(() => Task.FromResult(MailsOf(app, id, "missed-opportunity")), m => m.Count == 1, "the recipient's e-mail");
        Assert.Contains("took back the 11.25 EUR transferred to your connected account", toRecipient[0].TextBody, StringComparison.Ordinal);

        // Stripe's transfer.reversed for our own reversal is acknowledged without an alert.
        await Eventually.UntilAsync(() => Task.FromResult(app.Stripe.WebhookAttempts.Any(a => app.Stripe.GetEvent(a.EventId)?.Type == "transfer.reversed" && a.StatusCode == 200)), "transfer.reversed delivered");
        Assert.Empty(await app.OpenAlertsAsync("transfer_reversed"));
        Assert.Empty(await app.OpenAlertsAsync("money_effect_rejected"));
    }

    [Fact]
    public async Task A_reversal_refused_because_the_recipient_paid_out_their_balance_makes_no_refund_and_the_alert_says_why()
    {
        await using var app = await LifecycleApp.StartAsync("refund_after_release_refused");
        var recipient = await app.PayableRecipientAsync();
        var (id, transferId, _) = await ReleasedAsync(app, recipient);
        var account = app.Stripe.GetTransfer(transferId)!.Destination;
        Assert.NotNull(app.Stripe.PayOutBalance(account));
        Assert.Equal(0, app.Stripe.AccountBalance(account));

        var refund = await app.Admin().PostAsJsonAsync($"/v1/admin/escrows/{id}/refund", new { reason = "sender complained" });
        Assert.True(refund.IsSuccessStatusCode, await refund.Content.ReadAsStringAsync());
        var stopped = await app.WaitForAsync(id, e => e.Events().Contains("reversal_rejected"), "reversal_rejected");

        Assert.Equal("released", stopped.Status());
        Assert.True(stopped.GetProperty("needsOperator").GetBoolean());
        Assert.Empty(app.Stripe.TransferReversals);
        Assert.Empty(app.Stripe.Refunds);
        Assert.DoesNotContain(app.Stripe.Requests, r => r.Operation == SandboxOperations.RefundsCreate);
        var alert = Assert.Single(await app.OpenAlertsAsync("money_effect_rejected"), a => a.GetProperty("escrowId").GetGuid() == id);
        var details = alert.GetProperty("details").GetString()!;
        Assert.Contains("balance_insufficient", details, StringComparison.Ordinal);
        Assert.Contains("too small a balance", details, StringComparison.Ordinal);
        Assert.Contains("not refunded", details, StringComparison.Ordinal);
    }
}
