using Escrow.Tests.Grains;
using Orleans.Runtime.Hosting;

namespace Escrow.Tests.Api.Contract;

/// <summary>
/// The inbound endpoint stores a reply's receipt before it judges the reply. Here the judgement is cut off after that
/// (the write of the decision fails, as when the database goes or the process dies), and Postmark's retry of the same
/// MessageID comes after the deadline and its grace: it is judged by the first receipt, not by when it came.
/// </summary>
public sealed class PostmarkInboundReceiptFirstTests : IAsyncLifetime
{
    private readonly GatedGrainStorage _storage = new();
    private EscrowApiFactory _app = null!;

    public Task InitializeAsync()
    {
        _app = new EscrowApiFactory
        {
            ConfigureExtraServices = services => services.AddGrainStorage(EscrowStorage.ProviderName, (_, _) => _storage),
        };
        _ = _app.Server;
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task A_reply_whose_judgement_failed_after_its_receipt_was_stored_and_retried_after_the_deadline_is_released_once_and_forwarded_once()
    {
        var recipient = await _app.NewRecipientAsync(payouts: true);
        var created = await _app.CreateHeldEscrowAsync(recipient);
        var id = created.GetProperty("id").GetGuid();
        var replyDeadline = created.GetProperty("replyDeadline").GetDateTimeOffset();
        var token = await _app.ReplyTokenOfAsync(id);
        var grainId = _app.Grains.GetGrain<IEscrowGrain>(id).GetGrainId();
        EscrowState Stored() => _storage.Stored<EscrowState>("escrow", grainId)!;
        await Eventually.UntilAsync(async () => (await _app.Store().GetLedgerAsync(id)).Count == Stored().History.Length, "the hold's turn to end");

        // The first delivery comes in time; the write of the reply's decision fails.
        var messageId = Guid.NewGuid().ToString();
        var firstReceipt = _app.Clock.GetUtcNow();
        var writesBefore = _storage.WritesTo(grainId);
        _storage.Hold();
        HttpResponseMessage first;
        try
        {
            var delivery = _app.PostInboundAsync(EscrowApiFactory.InboundReply(token, Contract.EmailOf(recipient), messageId));
            await Eventually.UntilAsync(() => Task.FromResult(_storage.WritesTo(grainId) > writesBefore && _storage.Waiting > 0), "the reply's write at the gate");
            _storage.FailWaiting();
            first = await delivery;
        }
        finally
        {
            _storage.Open();
        }
        Assert.False(first.IsSuccessStatusCode, $"{(int)first.StatusCode}: Postmark retries only a delivery that failed");
        Assert.Equal(EscrowStatus.Held, Stored().Status);
        var receipt = Assert.Single(await _app.Store().GetInboundMessagesAsync(id));
        Assert.Equal(InboundMessageRecord.Pending, receipt.IgnoredReason);
        Assert.Equal(firstReceipt, receipt.ReceivedAt, TimeSpan.FromMilliseconds(1));

        // The deadline and its grace pass before Postmark retries: the refund waits for the reply it knows of.
        _app.Clock.SetUtcNow(replyDeadline.AddMinutes(30));
        await Eventually.UntilAsync(() => Task.FromResult(Stored().History.Any(h => h.Event == "refund_waits_for_reply")), "the refund to wait for the reply");
        var retry = await _app.PostInboundAsync(EscrowApiFactory.InboundReply(token, Contract.EmailOf(recipient), messageId));

        Assert.True(retry.IsSuccessStatusCode, $"{(int)retry.StatusCode}");
        Assert.Equal("accepted", (await Contract.JsonOf(retry)).GetProperty("outcome").GetString());
        await _app.WaitForStatusAsync(id, "released");
        await Eventually.UntilAsync(() => Task.FromResult(MailOf(id, "payout-sent") == 1), "the payout e-mail");
        Assert.Single(Stored().History, h => h.Event == "captured");
        Assert.Single(_app.Stripe.Transfers, t => t.TransferGroup == id.ToString());
        Assert.Equal(1, MailOf(id, "reply-forwarded"));
        Assert.Equal(0, MailOf(id, "refund"));
        var judged = Assert.Single(await _app.Store().GetInboundMessagesAsync(id));
        Assert.Null(judged.IgnoredReason);
        Assert.Equal(firstReceipt, judged.ReceivedAt, TimeSpan.FromMilliseconds(1));
    }

    private int MailOf(Guid escrowId, string kind) => _app.Postmark.Outbox.Count(m => m.Tag == kind
        && m.Metadata.TryGetValue("effect_id", out var effect) && effect.StartsWith(escrowId.ToString(), StringComparison.Ordinal));
}
