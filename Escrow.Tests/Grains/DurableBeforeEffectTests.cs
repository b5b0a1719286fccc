namespace Escrow.Tests.Grains;

/// <summary>No effect, e-mails included, runs before the state that decided it is durable.</summary>
public sealed class DurableBeforeEffectTests(GatedStorageFixture f) : IClassFixture<GatedStorageFixture>
{
    private EscrowState? Stored(IEscrowGrain grain) => f.Storage.Stored<EscrowState>("escrow", grain.GetGrainId());

    /// <summary>
    /// Guards the activation that stops trusting memory after a failed write: in a failover run, a retried reply was
    /// refused with 409 already_replied from a decision that had never been stored.
    /// </summary>
    [Fact]
    public async Task A_timely_reply_whose_write_failed_and_is_retried_after_the_deadline_is_released_once_and_forwarded_once()
    {
        var recipient = await f.NewRecipientAsync();
        var (id, grain, view) = await f.NewHeldEscrowAsync(recipient);
        await Eventually.UntilAsync(() => Task.FromResult(f.Emails.Count(id, "new-message") == 1), "the new-message e-mail of the hold");
        await Eventually.UntilAsync(async () => (await f.Store.GetLedgerAsync(id)).Count == Stored(grain)!.History.Length, "the hold's turn to end");

        // The inbound endpoint records the e-mail's receipt before it judges it; Postmark's retry is judged by it.
        var receivedAt = f.Clock.GetUtcNow();
        var messageId = "pm-" + id.ToString("N");
        await f.Store.RecordInboundReceiptAsync(new InboundMessageRecord(messageId, id, recipient + "@example.com", "Re", receivedAt, false, false, InboundMessageRecord.Pending, ""));

        // The reply is decided, and the write of that decision fails (the database went, or the process died).
        f.Storage.Hold();
        Task<EscrowResult> first;
        try
        {
            first = grain.AcceptReplyAsync(new ReplyReceived(receivedAt, "email", "Here is my answer."));
            await Eventually.UntilAsync(() => Task.FromResult(f.Storage.Waiting == 1), "the reply's write at the gate");
            Assert.Equal(0, f.Emails.Count(id, "reply-forwarded"));
            f.Storage.FailWaiting();
            await Assert.ThrowsAnyAsync<Exception>(() => first);
        }
        finally
        {
            f.Storage.Open();
        }
        Assert.Equal(EscrowStatus.Held, Stored(grain)!.Status);

        // The deadline and its grace pass before Postmark retries: the refund waits for the reply it knows of.
        f.Clock.Advance(view.ReplyDeadline - f.Clock.GetUtcNow() + TimeSpan.FromMinutes(2));
        await Eventually.UntilAsync(() => Task.FromResult(Stored(grain)!.History.Any(h => h.Event == "refund_waits_for_reply")), "the refund to wait for the reply");

        var retried = await grain.AcceptReplyAsync(new ReplyReceived(receivedAt, "email", "Here is my answer."));

        Assert.True(retried.Accepted, retried.RejectionCode);
        await Eventually.UntilAsync(async () => (await grain.GetAsync())!.Status == "released", "released");
        var stored = Stored(grain)!;
        Assert.Equal(EscrowStatus.Released, stored.Status);
        Assert.Single(stored.History, h => h.Event == "captured");
        Assert.Equal("succeeded", f.Payments.PaymentIntents[stored.PaymentIntentId!].Status);
        Assert.Single(await f.Payments.FindTransfersAsync(id));
        await Eventually.UntilAsync(() => Task.FromResult(f.Emails.Count(id, "payout-sent") == 1), "the payout e-mail");
        Assert.Equal(1, f.Emails.Count(id, "reply-forwarded"));
        Assert.Equal(0, f.Emails.Count(id, "refund"));
    }

    [Fact]
    public async Task A_reply_forwarded_email_is_sent_only_after_reply_accepted_is_stored()
    {
        var recipient = await f.NewRecipientAsync();
        var (id, grain, _) = await f.NewHeldEscrowAsync(recipient);
        await Eventually.UntilAsync(async () => (await f.Store.GetLedgerAsync(id)).Count == Stored(grain)!.History.Length, "the hold's turn to end");

        f.Storage.Hold();
        try
        {
            var reply = grain.AcceptReplyAsync(new ReplyReceived(f.Clock.GetUtcNow(), "platform", "Thanks!"));
            await Eventually.UntilAsync(() => Task.FromResult(f.Storage.Waiting == 1), "the reply's write at the gate");
            Assert.Equal(0, f.Emails.Count(id, "reply-forwarded"));
            Assert.Equal("requires_capture", f.Payments.PaymentIntents[Stored(grain)!.PaymentIntentId!].Status);
            f.Storage.Open();
            Assert.True((await reply).Accepted);
        }
        finally
        {
            f.Storage.Open();
        }
        await Eventually.UntilAsync(() => Task.FromResult(f.Emails.Count(id, "reply-forwarded") == 1), "the reply-forwarded e-mail");
    }
}
