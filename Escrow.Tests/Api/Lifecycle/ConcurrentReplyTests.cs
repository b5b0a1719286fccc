namespace Escrow.Tests.Api.Lifecycle;

/// <summary>Many replies at once, through the API and by email: the grain takes one, the money moves once.</summary>
public sealed class ConcurrentReplyTests
{
    [Fact]
    public async Task Ten_concurrent_replies_by_api_and_email_release_once_with_exactly_one_capture_and_one_transfer()
    {
        await using var app = await LifecycleApp.StartAsync("concurrent_replies");
        var (escrow, id) = await app.HeldEscrowOfNewRecipientAsync();
        var piId = escrow.PaymentIntentId();
        _ = await app.ReplyTokenOfAsync(id);

        using var start = new SemaphoreSlim(0);
        var replies = Enumerable.Range(0, 10).Select(async i =>
        {
            await start.WaitAsync();
            if (i % 2 == 0)
            {
                var response = await app.ReplyAsync(id, $"answer {i}");
                return response.StatusCode == HttpStatusCode.OK ? "accepted" : $"{(int)response.StatusCode}:{await LifecycleApp.RejectionOf(response)}";
            }
            return await app.EmailReplyAsync(id, messageId: $"<reply-{i}-{Guid.NewGuid():N}@mail.test>");
        }).ToList();
        start.Release(10);
        var outcomes = await Task.WhenAll(replies);

        Assert.Equal(1, outcomes.Count(o => o == "accepted"));
        Assert.All(outcomes.Where(o => o != "accepted"), o => Assert.Contains(o, new[] { "409:already_replied", "ignored:already_replied" }));

        var released = await app.WaitForStatusAsync(id, "released");
        Assert.Equal(1, released.Events().Count(e => e == "reply_accepted"));
        Assert.Single(app.CaptureRequests(piId));
        Assert.Single(app.SucceededCaptures(piId));
        Assert.Equal("succeeded", app.Stripe.GetPaymentIntent(piId)!.Status);
        var transfer = Assert.Single(app.TransfersOf(id));
        Assert.Equal(escrow.GetProperty("recipientShareMinor").GetInt64(), transfer.Amount);
        Assert.Equal(transfer.Id, released.GetProperty("transferId").GetString());
        Assert.Single(app.Stripe.Requests, r => r.Operation == SandboxOperations.TransfersCreate && !r.Replayed);
    }
}
