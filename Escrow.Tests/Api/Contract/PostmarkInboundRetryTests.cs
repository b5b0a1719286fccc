namespace Escrow.Tests.Api.Contract;

/// <summary>Postmark retries a delivery that failed: the retry is judged by the first delivery's receipt time.</summary>
public sealed class PostmarkInboundRetryTests(InMemoryApiFixture fixture) : IClassFixture<InMemoryApiFixture>
{
    private EscrowApiFactory App => fixture.Factory;

    [Fact]
    public async Task A_reply_first_delivered_in_time_and_retried_after_the_deadline_is_judged_by_its_first_receipt_and_releases()
    {
        var recipient = await App.NewRecipientAsync(payouts: true);
        var created = await App.CreateHeldEscrowAsync(recipient);
        var id = created.GetProperty("id").GetGuid();
        var token = await App.ReplyTokenOfAsync(id);
        var messageId = Guid.NewGuid().ToString();
        // The first delivery's receipt was recorded, then its handling was cut off (what a crash leaves behind).
        var firstReceipt = App.Clock.GetUtcNow();
        Assert.Equal(firstReceipt, await App.Store().RecordInboundReceiptAsync(
            new InboundMessageRecord(messageId, id, Contract.EmailOf(recipient), "Re", firstReceipt, false, false, InboundMessageRecord.Pending, "")), TimeSpan.FromMilliseconds(1));

        // From the answer, not the store: the stored projection is synced after the answer.
        var replyDeadline = created.GetProperty("replyDeadline").GetDateTimeOffset();
        App.Clock.SetUtcNow(replyDeadline.AddMinutes(30));
        var retry = await App.PostInboundAsync(EscrowApiFactory.InboundReply(token, Contract.EmailOf(recipient), messageId));

        Assert.Equal(HttpStatusCode.OK, retry.StatusCode);
        Assert.Equal("accepted", (await Contract.JsonOf(retry)).GetProperty("outcome").GetString());
        await App.WaitForStatusAsync(id, "released");
        var recorded = Assert.Single(await App.Store().GetInboundMessagesAsync(id));
        Assert.Null(recorded.IgnoredReason);
        Assert.Equal(firstReceipt, recorded.ReceivedAt, TimeSpan.FromMilliseconds(1));
        Assert.Single(App.Stripe.Transfers, t => t.TransferGroup == id.ToString());
    }
}
