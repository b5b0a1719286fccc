namespace Escrow.Tests.Api.Lifecycle;

/// <summary>A chargeback after release, driven through the sandbox's dispute controls on PostgreSQL.</summary>
public sealed class DisputeTests
{
    private static async Task<(Guid Id, string TransferId, string ChargeId)> ReleasedAsync(EscrowApiFactory app)
    {
        var (escrow, id) = await app.HeldEscrowOfNewRecipientAsync();
        (await app.ReplyAsync(id)).EnsureSuccessStatusCode();
        var released = await app.WaitForStatusAsync(id, "released");
        var charge = app.Stripe.GetPaymentIntent(escrow.PaymentIntentId())!.LatestCharge!;
        return (id, released.GetProperty("transferId").GetString()!, charge);
    }

    private static async Task<JsonElement> OpenDisputeAsync(EscrowApiFactory app, string chargeId)
    {
        var opened = await app.CreateClient().PostAsync($"/_sandbox/stripe/charges/{chargeId}/dispute", null);
        Assert.Equal(HttpStatusCode.OK, opened.StatusCode);
        return await opened.Content.ReadFromJsonAsync<JsonElement>();
    }

    private static Task<HttpResponseMessage> CloseDisputeAsync(EscrowApiFactory app, string disputeId, string status) =>
        app.CreateClient().PostAsJsonAsync($"/_sandbox/stripe/disputes/{disputeId}/close", new { status });

    [Fact]
    public async Task A_dispute_after_release_reverses_the_share_and_once_won_transfers_it_again_with_its_own_key()
    {
        await using var app = await LifecycleApp.StartAsync("dispute_won");
        var (id, firstTransfer, charge) = await ReleasedAsync(app);

        var dispute = await OpenDisputeAsync(app, charge);
        Assert.Equal("dispute", dispute.GetProperty("object").GetString());
        Assert.Equal("needs_response", dispute.GetProperty("status").GetString());
        var disputeId = dispute.GetProperty("id").GetString()!;

        var reversed = await app.WaitForAsync(id, e => e.Events().Contains("share_reversed"), "the share reversed");
        Assert.Equal("released", reversed.Status());
        Assert.Equal(disputeId, reversed.GetProperty("dispute").GetProperty("id").GetString());
        Assert.Equal("open", reversed.GetProperty("dispute").GetProperty("status").GetString());
        var reversal = Assert.Single(app.Stripe.TransferReversals);
        Assert.Equal(firstTransfer, reversal.Transfer);
        Assert.Single(await app.OpenAlertsAsync("dispute_opened"), a => a.GetProperty("escrowId").GetGuid() == id);

        Assert.Equal(HttpStatusCode.OK, (await CloseDisputeAsync(app, disputeId, "won")).StatusCode);
        var again = await app.WaitForAsync(id, e => e.Status() == "released" && e.GetProperty("transferId").GetString() != firstTransfer, "released with a new transfer");

        Assert.Equal("won", again.GetProperty("dispute").GetProperty("status").GetString());
        var transfers = app.TransfersOf(id);
        Assert.Equal(2, transfers.Count);
        Assert.Single(app.Stripe.TransferReversals);
        var second = Assert.Single(transfers, t => t.Id != firstTransfer);
        Assert.Equal(second.Id, again.GetProperty("transferId").GetString());
        Assert.Equal(1_125, second.Amount);
        Assert.True(app.Stripe.GetTransfer(firstTransfer)!.Reversed);
        // Each money movement under its own key: the first transfer, its reversal, the transfer made again.
        var keys = app.Stripe.Requests.Where(r => r.StatusCode == 200 && r.Operation is SandboxOperations.TransfersCreate or SandboxOperations.TransferReversalsCreate && !r.Replayed)
            .Select(r => r.IdempotencyKey).ToList();
        Assert.Equal(3, keys.Count);
        Assert.Equal(3, keys.Distinct().Count());
        Assert.Contains($"escrow/{id:D}/reversal/{firstTransfer}", keys);
        Assert.Equal(["dispute_opened", "share_reversed", "dispute_won", "transferred"], again.Events().SkipWhile(e => e != "dispute_opened").ToArray());
        Assert.Single(await app.OpenAlertsAsync("dispute_won"), a => a.GetProperty("escrowId").GetGuid() == id);
        Assert.Empty(await app.OpenAlertsAsync("transfer_reversed"));
    }

    [Fact]
    public async Task A_lost_dispute_is_recorded_transfers_nothing_and_tells_both_parties()
    {
        await using var app = await LifecycleApp.StartAsync("dispute_lost");
        var (id, firstTransfer, charge) = await ReleasedAsync(app);
        var disputeId = (await OpenDisputeAsync(app, charge)).GetProperty("id").GetString()!;
        await app.WaitForAsync(id, e => e.Events().Contains("share_reversed"), "the share reversed");

        Assert.Equal(HttpStatusCode.OK, (await CloseDisputeAsync(app, disputeId, "lost")).StatusCode);
        var lost = await app.WaitForAsync(id, e => e.Events().Contains("dispute_lost"), "dispute_lost");

        Assert.Equal("released", lost.Status());
        Assert.Equal("lost", lost.GetProperty("dispute").GetProperty("status").GetString());
        Assert.Equal(firstTransfer, Assert.Single(app.TransfersOf(id)).Id);
        Assert.Single(await app.OpenAlertsAsync("dispute_lost"), a => a.GetProperty("escrowId").GetGuid() == id);
        await Eventually.UntilAsync(() => Task.FromResult(app.Postmark.Outbox.Count(m => m.Metadata.GetValueOrDefault("escrow_id") == id.ToString("D")
            && m.Tag is "refund" or "missed-opportunity" && m.TextBody!.Contains("dispute", StringComparison.Ordinal))), n => n == 2, "both dispute e-mails");
    }

    [Fact]
    public async Task The_sandbox_refuses_to_close_an_unknown_dispute_or_with_another_status()
    {
        await using var app = await LifecycleApp.StartAsync("dispute_controls");
        Assert.Equal(HttpStatusCode.NotFound, (await CloseDisputeAsync(app, "dp_missing", "won")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await CloseDisputeAsync(app, "dp_missing", "maybe")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await app.CreateClient().PostAsync("/_sandbox/stripe/charges/ch_missing/dispute", null)).StatusCode);
    }
}
