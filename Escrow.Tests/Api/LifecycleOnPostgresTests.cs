namespace Escrow.Tests.Api;

/// <summary>One API process on a real PostgreSQL database, with the sandboxes, shared by the tests of this class.</summary>
public sealed class PostgresApiFixture : IAsyncLifetime
{
    public EscrowApiFactory Factory { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var server = await PostgresServer.GetAsync();
        Factory = new EscrowApiFactory(await server.CreateDatabaseAsync("api_lifecycle"));
        _ = Factory.Server;
    }

    public async Task DisposeAsync() => await Factory.DisposeAsync();
}

/// <summary>The escrow lifecycle through HTTP alone, on PostgreSQL with the sandbox (issue: "What it must show").</summary>
public sealed class LifecycleOnPostgresTests(PostgresApiFixture fixture) : IClassFixture<PostgresApiFixture>
{
    private EscrowApiFactory App => fixture.Factory;

    private static string NewRecipient() => "r-" + Guid.NewGuid().ToString("N")[..12];

    [Fact]
    public async Task Held_escrow_plus_a_reply_is_released_with_exactly_one_transfer_of_the_share_from_the_captured_charge()
    {
        var recipient = NewRecipient();
        await App.PutRecipientAsync(recipient, basePriceMinor: 1_000);
        await App.EnablePayoutsAsync(recipient);
        var escrow = await App.CreateHeldEscrowAsync(recipient);
        var id = escrow.GetProperty("id").GetGuid();
        Assert.Equal(1_500, escrow.GetProperty("amountMinor").GetInt64());
        Assert.Equal(1_125, escrow.GetProperty("recipientShareMinor").GetInt64());
        Assert.Equal(375, escrow.GetProperty("platformFeeMinor").GetInt64());

        var reply = await App.PostInboundAsync(EscrowApiFactory.InboundReply(await App.ReplyTokenOfAsync(id)));
        Assert.Equal(HttpStatusCode.OK, reply.StatusCode);
        var released = await App.WaitForStatusAsync(id, "released");

        var pi = App.Stripe.GetPaymentIntent(escrow.GetProperty("paymentIntentId").GetString()!)!;
        Assert.Equal("succeeded", pi.Status);
        var transfer = Assert.Single(App.Stripe.Transfers, t => t.TransferGroup == id.ToString());
        Assert.Equal(1_125, transfer.Amount);
        Assert.Equal(pi.LatestCharge, transfer.SourceTransaction);
        Assert.Equal(transfer.Id, released.GetProperty("transferId").GetString());

        // Its work done, the escrow's reminder row goes (removed with the handle the activation registered; a row left
        // behind would tick for ever).
        var reminders = App.Services.GetRequiredService<IReminderTable>();
        var grainId = App.Grains.GetGrain<IEscrowGrain>(id).GetGrainId();
        await Eventually.UntilAsync(async () => await reminders.ReadRow(grainId, "escrow") is null, "the released escrow's reminder row to be deleted");
    }

    [Fact]
    public async Task No_reply_refunds_by_cancelling_the_authorisation_at_deadline_plus_grace_and_never_before()
    {
        var recipient = NewRecipient();
        await App.PutRecipientAsync(recipient);
        var escrow = await App.CreateHeldEscrowAsync(recipient);
        var id = escrow.GetProperty("id").GetGuid();
        var replyDeadline = escrow.GetProperty("replyDeadline").GetDateTimeOffset();
        var piId = escrow.GetProperty("paymentIntentId").GetString()!;

        App.Clock.SetUtcNow(replyDeadline - TimeSpan.FromSeconds(1));
        await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => App.Grains.GetGrain<IEscrowGrain>(id).WakeAsync()));
        Assert.Equal("held", (await App.GetEscrowAsync(id)).GetProperty("status").GetString());
        Assert.Equal("requires_capture", App.Stripe.GetPaymentIntent(piId)!.Status);

        App.Clock.SetUtcNow(replyDeadline);
        var refunded = await App.WaitForStatusAsync(id, "refunded");
        Assert.Equal("canceled", App.Stripe.GetPaymentIntent(piId)!.Status);
        Assert.DoesNotContain(App.Stripe.Refunds, r => r.PaymentIntent == piId);
        Assert.Contains(refunded.GetProperty("history").EnumerateArray(), h => h.GetProperty("event").GetString() == "payment_intent_cancelled");
    }
}
