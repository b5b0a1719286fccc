namespace Escrow.Tests.Api.Operations;

/// <summary>Stuck escrows alert by themselves: the monitor's reminder, the same rules as the admin list.</summary>
public sealed class StuckMonitorTests
{
    [Fact]
    public async Task An_escrow_too_long_waiting_for_payout_setup_raises_escrow_stuck_once_by_itself_and_is_listed_as_stuck_by_the_same_rule()
    {
        await using var app = await LifecycleApp.StartAsync("stuck-monitor", new Dictionary<string, string?>
        {
            ["Monitor:Period"] = "PT1S",
            ["Monitor:PendingUserSetupStuckAfter"] = "P1D",
        });
        var recipient = await app.NewRecipientAsync();
        var first = await WaitingForPayoutSetupAsync(app, recipient);
        var monitor = app.Grains.GetGrain<IMonitorGrain>(0);

        async Task<IReadOnlyList<Guid>> ListedStuckAsync() =>
            [.. (await app.Admin().GetFromJsonAsync<JsonElement>($"/v1/admin/escrows?stuck=true&recipientId={recipient}"))
                .GetProperty("items").EnumerateArray().Select(e => e.GetProperty("escrowId").GetGuid())];
        async Task<int> StuckAlertsOfAsync(Guid id) => (await app.OpenAlertsAsync("escrow_stuck")).Count(a => a.GetProperty("escrowId").GetGuid() == id);

        // Under the configured day: neither listed nor alerted.
        app.Clock.Advance(TimeSpan.FromHours(23));
        Assert.Equal(0, await monitor.CheckAsync());
        Assert.Empty(await ListedStuckAsync());

        app.Clock.Advance(TimeSpan.FromHours(1) + TimeSpan.FromMinutes(1));
        Assert.Equal([first], await ListedStuckAsync());
        await Eventually.UntilAsync(async () => await StuckAlertsOfAsync(first) == 1, "escrow_stuck raised by the monitor's own reminder");
        var alert = (await app.OpenAlertsAsync("escrow_stuck")).Single();
        Assert.Equal("warning", alert.GetProperty("severity").GetString());
        Assert.StartsWith("pending_user_setup since ", alert.GetProperty("details").GetString(), StringComparison.Ordinal);

        // Still stuck: checked again, not alerted again. Another escrow stuck later is its own alert.
        Assert.Equal(0, await monitor.CheckAsync());
        var second = await WaitingForPayoutSetupAsync(app, recipient);
        app.Clock.Advance(TimeSpan.FromDays(1) + TimeSpan.FromMinutes(1));
        await Eventually.UntilAsync(async () => await StuckAlertsOfAsync(second) == 1, "the second escrow's escrow_stuck");
        Assert.Equal(1, await StuckAlertsOfAsync(first));
        Assert.Equal(2, (await app.OpenAlertsAsync("escrow_stuck")).Count);
        Assert.Equal(new[] { first, second }.Order(), (await ListedStuckAsync()).Order());
    }

    private static async Task<Guid> WaitingForPayoutSetupAsync(EscrowApiFactory app, string recipient)
    {
        var escrow = await app.CreateHeldEscrowAsync(recipient);
        Assert.Equal(System.Net.HttpStatusCode.OK, (await app.ReplyAsync(escrow.Id())).StatusCode);
        await app.WaitForStatusAsync(escrow.Id(), "pending_user_setup");
        return escrow.Id();
    }
}
