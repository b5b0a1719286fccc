namespace Escrow.Tests.Api.Operations;

/// <summary>
/// The stuck conditions beyond a status held too long, on PostgreSQL with the sandboxes and a fake clock: a failed
/// transfer nothing will retry, and an effect waiting too long in the outbox. The monitor is asked directly (its own
/// reminder comes every 5 minutes of real time, after these tests end).
/// </summary>
public sealed class StuckConditionTests
{
    [Fact]
    public async Task A_transfer_whose_retries_are_used_up_is_stuck_at_once_and_alerted_once_per_condition()
    {
        await using var app = await LifecycleApp.StartAsync("stuck-transfer", new Dictionary<string, string?>
        {
            ["Escrow:TransferRetry:MaxAttempts"] = "2",
        });
        var recipient = await app.PayableRecipientAsync();
        var id = (await app.CreateHeldEscrowAsync(recipient)).Id();
        app.Stripe.InjectFault(SandboxOperations.TransfersCreate, SandboxFaultKind.Refused, 2);
        var monitor = app.Grains.GetGrain<IMonitorGrain>(0);

        Assert.Equal(System.Net.HttpStatusCode.OK, (await app.ReplyAsync(id)).StatusCode);
        var retrying = await app.WaitForAsync(id, e => e.Status() == "transfer_failed", "the first transfer refused");
        await monitor.CheckAsync();
        Assert.Empty(await ListedStuckAsync(app, recipient));
        Assert.Empty(await StuckAlertsAsync(app, id));

        var grain = app.Grains.GetGrain<IEscrowGrain>(id);
        app.Clock.Advance(TimeSpan.FromMinutes(1) + TimeSpan.FromSeconds(1));
        await grain.WakeAsync();
        await Eventually.UntilAsync(async () => (await grain.GetAsync())!, v => v.TransferFailures == 2 && v.NextTransferAttemptAt is null, "retries used up");

        // Stuck the moment nothing will try again: listed, and alerted once however often the monitor looks.
        Assert.Equal([id], await ListedStuckAsync(app, recipient));
        await monitor.CheckAsync();
        await monitor.CheckAsync();
        var alert = Assert.Single(await StuckAlertsAsync(app, id));
        Assert.Contains("retries exhausted", alert.GetProperty("details").GetString(), StringComparison.Ordinal);

        // A day on, the status rule (transfer_failed over P1D) is a second condition of the same escrow: one more alert.
        app.Clock.Advance(TimeSpan.FromHours(24) + TimeSpan.FromMinutes(1));
        await monitor.CheckAsync();
        await monitor.CheckAsync();
        var alerts = await StuckAlertsAsync(app, id);
        Assert.Equal(2, alerts.Count);
        Assert.Single(alerts, a => a.GetProperty("details").GetString()!.StartsWith("transfer_failed since ", StringComparison.Ordinal)
            && a.GetProperty("details").GetString()!.Contains("longer than", StringComparison.Ordinal));
        Assert.Equal([id], await ListedStuckAsync(app, recipient));
        _ = retrying;
    }

    [Fact]
    public async Task An_effect_waiting_over_an_hour_is_stuck_and_alerted_once_and_no_longer_listed_once_it_is_done()
    {
        await using var app = await LifecycleApp.StartAsync("stuck-effect", new Dictionary<string, string?>
        {
            ["Monitor:EffectStuckAfter"] = "PT1H",
        });
        var recipient = await app.PayableRecipientAsync();
        // Postmark fails every send for now: the new escrow's e-mails wait in its outbox, retried with backoff.
        app.Postmark.InjectFaults(PostmarkFaultKind.ServerError, 1_000);
        var id = (await app.CreateHeldEscrowAsync(recipient)).Id();
        var grain = app.Grains.GetGrain<IEscrowGrain>(id);
        var monitor = app.Grains.GetGrain<IMonitorGrain>(0);
        await Eventually.UntilAsync(async () => (await grain.GetAsync())!, v => v.PendingEffects > 0, "e-mails waiting");

        app.Clock.Advance(TimeSpan.FromMinutes(59));
        await grain.WakeAsync();
        await monitor.CheckAsync();
        Assert.Empty(await ListedStuckAsync(app, recipient));
        Assert.Empty(await StuckAlertsAsync(app, id));

        app.Clock.Advance(TimeSpan.FromMinutes(2));
        await grain.WakeAsync();
        Assert.Equal([id], await ListedStuckAsync(app, recipient));
        await monitor.CheckAsync();
        await monitor.CheckAsync();
        var alert = Assert.Single(await StuckAlertsAsync(app, id));
        Assert.StartsWith("an effect has waited in the outbox since ", alert.GetProperty("details").GetString(), StringComparison.Ordinal);
        Assert.Equal("held", await app.StatusOfAsync(id));

        // Postmark answers again: the e-mails go (their completion is in the e-mail log; the grain writes it with its
        // next change), the outbox empties with no new history entry, and the list follows.
        app.Postmark.ClearFaults();
        app.Clock.Advance(TimeSpan.FromMinutes(31));
        await grain.WakeAsync();
        var store = app.Services.GetRequiredService<IEscrowStore>();
        await Eventually.UntilAsync(async () => await store.GetEmailLogAsync(id), log => log.Count(e => e.Outcome == "sent") == 2, "both e-mails sent");
        await Eventually.UntilAsync(async () => await ListedStuckAsync(app, recipient), l => l.Count == 0, "no longer listed as stuck");
        await monitor.CheckAsync();
        Assert.Single(await StuckAlertsAsync(app, id));
    }

    private static async Task<IReadOnlyList<Guid>> ListedStuckAsync(EscrowApiFactory app, string recipient) =>
        [.. (await app.Admin().GetFromJsonAsync<JsonElement>($"/v1/admin/escrows?stuck=true&recipientId={recipient}"))
            .GetProperty("items").EnumerateArray().Select(e => e.GetProperty("escrowId").GetGuid())];

    private static async Task<IReadOnlyList<JsonElement>> StuckAlertsAsync(EscrowApiFactory app, Guid id) =>
        [.. (await app.OpenAlertsAsync("escrow_stuck")).Where(a => a.GetProperty("escrowId").GetGuid() == id)];
}
