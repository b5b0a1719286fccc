using System.Diagnostics;
using Xunit.Abstractions;

namespace Escrow.Tests.Sql.Cluster;

/// <summary>Two silos on PostgreSQL running the real escrow grains: the silo hosting an escrow dies, the escrow does not.</summary>
public sealed class EscrowFailoverTests(ITestOutputHelper output)
{
    [Fact]
    public async Task When_the_silo_hosting_a_held_escrow_is_killed_the_survivor_has_its_state_and_its_deadline_still_refunds_it_once()
    {
        var total = Stopwatch.StartNew();
        var connectionString = await (await PostgresServer.GetAsync()).CreateDatabaseAsync("cluster_failover");
        var step = Stopwatch.StartNew();
        await using var app = await EscrowSiloCluster.StartAsync(connectionString, silos: 2);
        output.WriteLine($"deploy of 2 silos: {step.Elapsed.TotalSeconds:F2} s");

        var recipientId = "r-" + Guid.NewGuid().ToString("N")[..12];
        await app.Client.GetGrain<IRecipientGrain>(recipientId).UpsertAsync(new RecipientProfile("alice@example.com", "Alice", 1_000, "EUR", null, null));
        var escrowId = Guid.NewGuid();
        var escrow = app.Client.GetGrain<IEscrowGrain>(escrowId);
        var created = await escrow.CreateAsync(new CreateEscrow(recipientId, "bob@example.com", TimeSpan.FromHours(24), "A question",
            "Hello, could you answer this question?", "pm_card_visa", Convert.ToHexString(Guid.NewGuid().ToByteArray()) + Convert.ToHexString(Guid.NewGuid().ToByteArray())));
        Assert.True(created.Accepted, created.Rejection?.Message);
        var before = created.View!;
        Assert.Equal("held", before.Status);
        var piId = before.PaymentIntentId!;
        Assert.Equal("requires_capture", app.Sandbox.Sandbox.GetPaymentIntent(piId)!.Status);

        var host = await app.HostOfAsync(escrow);
        Assert.NotNull(host);
        var victim = Assert.Single(app.Cluster.Silos, s => s.SiloAddress.Equals(host));
        step.Restart();
        await app.Cluster.KillSiloAsync(victim);
        output.WriteLine($"kill of the hosting silo {host}: {step.Elapsed.TotalSeconds:F2} s");
        var survivor = Assert.Single(app.Cluster.GetActiveSilos());
        Assert.NotEqual(host, survivor.SiloAddress);

        step.Restart();
        var after = await Eventually.UntilAsync(async () =>
        {
            try
            {
                return await escrow.GetAsync();
            }
            catch (Exception e) when (e is OrleansException or TimeoutException)
            {
                return null;
            }
        }, v => v is not null, "the escrow answering after the kill", TimeSpan.FromSeconds(60));
        output.WriteLine($"first answer after the kill: {step.Elapsed.TotalSeconds:F2} s");
        Assert.Equal(survivor.SiloAddress, await app.HostOfAsync(escrow));
        Assert.Equal("held", after!.Status);
        Assert.Equal(before.ReplyDeadline, after.ReplyDeadline);
        Assert.Equal(before.ExpiresAt, after.ExpiresAt);
        Assert.Equal(piId, after.PaymentIntentId);
        Assert.Equal(before.AmountMinor, after.AmountMinor);
        Assert.Equal(before.RecipientShareMinor, after.RecipientShareMinor);
        Assert.Equal(before.History.Select(h => h.Event), after.History.Select(h => h.Event));

        // Only a reminder (now owned by the survivor) can act: no call wakes the escrow.
        app.Clock.SetUtcNow(before.ReplyDeadline + TimeSpan.FromSeconds(1));
        step.Restart();
        var refunded = await Eventually.UntilAsync(escrow.GetAsync, v => v!.Status == "refunded", "the escrow refunded by its deadline reminder", TimeSpan.FromSeconds(60));
        output.WriteLine($"deadline reminder → refunded on the survivor: {step.Elapsed.TotalSeconds:F2} s");
        Assert.Contains(refunded!.History, h => h.Event == "payment_intent_cancelled");
        Assert.Equal("canceled", app.Sandbox.Sandbox.GetPaymentIntent(piId)!.Status);
        Assert.Single(app.Sandbox.Sandbox.Requests, r => r.Path.Contains($"/payment_intents/{piId}/cancel", StringComparison.Ordinal) && !r.Replayed && r.StatusCode == 200);
        Assert.Empty(app.Sandbox.Sandbox.Transfers);
        Assert.Empty(app.Sandbox.Sandbox.Refunds);
        output.WriteLine($"whole test: {total.Elapsed.TotalSeconds:F2} s");
    }
}
