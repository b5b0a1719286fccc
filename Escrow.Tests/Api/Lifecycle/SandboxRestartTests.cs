namespace Escrow.Tests.Api.Lifecycle;

/// <summary>
/// The emulators keep their objects in the service's database: a restarted host (new process state, new emulators,
/// the same database) finds the PaymentIntents it holds, as it would at Stripe.
/// </summary>
public sealed class SandboxRestartTests
{
    [Fact]
    public async Task An_escrow_held_before_a_restart_is_captured_and_released_after_it_by_the_restarted_sandbox()
    {
        var connectionString = await (await PostgresServer.GetAsync()).CreateDatabaseAsync("sandbox_restart");
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        Guid id;
        string paymentIntentId, accountId, token;
        int emails;
        await using (var first = await LifecycleApp.StartAsync("sandbox_restart", clock: clock, connectionString: connectionString))
        {
            var recipient = await first.PayableRecipientAsync();
            var held = await first.CreateHeldEscrowAsync(recipient);
            id = held.Id();
            paymentIntentId = held.PaymentIntentId();
            token = await first.ReplyTokenOfAsync(id);
            accountId = first.Stripe.Accounts.Single().Id;
            emails = first.Postmark.Outbox.Count;
        }

        // A new host on the same database: nothing is shared with the first but PostgreSQL.
        await using var restarted = await LifecycleApp.StartAsync("sandbox_restart", clock: clock, connectionString: connectionString);
        var intent = restarted.Stripe.GetPaymentIntent(paymentIntentId);
        Assert.NotNull(intent);
        Assert.Equal("requires_capture", intent.Status);
        Assert.True(restarted.Stripe.GetAccount(accountId)?.PayoutsEnabled);
        Assert.Equal(emails, restarted.Postmark.Outbox.Count);
        Assert.Equal(token, await restarted.ReplyTokenOfAsync(id));

        var reply = await restarted.ReplyAsync(id, "Answered after the restart.");
        Assert.Equal(HttpStatusCode.OK, reply.StatusCode);
        var released = await restarted.WaitForStatusAsync(id, "released");

        Assert.Equal("succeeded", restarted.Stripe.GetPaymentIntent(paymentIntentId)!.Status);
        Assert.Single(restarted.SucceededCaptures(paymentIntentId));
        var transfer = Assert.Single(restarted.TransfersOf(id));
        Assert.Equal(transfer.Id, released.GetProperty("transferId").GetString());
        Assert.Equal(accountId, transfer.Destination);
    }
}
