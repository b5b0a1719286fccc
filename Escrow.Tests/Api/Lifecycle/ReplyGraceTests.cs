namespace Escrow.Tests.Api.Lifecycle;

/// <summary>The reply grace on PostgreSQL: a reply counts up to deadline + grace, and not a second later.</summary>
public sealed class ReplyGraceTests
{
    [Fact]
    public async Task A_reply_one_second_before_deadline_plus_grace_releases_with_one_capture_and_one_transfer()
    {
        await using var app = await LifecycleApp.StartAsync("grace_in_time");
        var (escrow, id) = await app.HeldEscrowOfNewRecipientAsync();
        var replyDeadline = escrow.GetProperty("replyDeadline").GetDateTimeOffset();
        var expiresAt = escrow.GetProperty("expiresAt").GetDateTimeOffset();
        Assert.True(replyDeadline > expiresAt, "the reply deadline includes the grace");

        app.Clock.SetUtcNow(replyDeadline - TimeSpan.FromSeconds(1));
        await app.WakeAllAsync([id]);
        Assert.Equal("held", await app.StatusOfAsync(id));

        var reply = await app.ReplyAsync(id);
        Assert.Equal(HttpStatusCode.OK, reply.StatusCode);
        var released = await app.WaitForStatusAsync(id, "released");

        var pi = app.Stripe.GetPaymentIntent(escrow.PaymentIntentId())!;
        Assert.Equal("succeeded", pi.Status);
        Assert.Single(app.SucceededCaptures(pi.Id));
        var transfer = Assert.Single(app.TransfersOf(id));
        Assert.Equal(escrow.GetProperty("recipientShareMinor").GetInt64(), transfer.Amount);
        Assert.Equal(transfer.Id, released.GetProperty("transferId").GetString());
        Assert.DoesNotContain("deadline_passed", released.Events());
    }

    [Fact]
    public async Task Replies_after_deadline_plus_grace_are_refused_as_too_late_by_api_and_email_and_the_escrows_are_refunded()
    {
        await using var app = await LifecycleApp.StartAsync("grace_too_late");
        var recipient = await app.PayableRecipientAsync();
        var byApi = await app.CreateHeldEscrowAsync(recipient);
        var byEmail = await app.CreateHeldEscrowAsync(recipient);
        var replyDeadline = byApi.GetProperty("replyDeadline").GetDateTimeOffset();
        Assert.Equal(replyDeadline, byEmail.GetProperty("replyDeadline").GetDateTimeOffset());

        app.Clock.SetUtcNow(replyDeadline + TimeSpan.FromSeconds(1));

        var reply = await app.ReplyAsync(byApi.Id());
        Assert.Equal(HttpStatusCode.Conflict, reply.StatusCode);
        Assert.Equal("reply_too_late", await LifecycleApp.RejectionOf(reply));
        Assert.Equal("ignored:reply_too_late", await app.EmailReplyAsync(byEmail.Id()));

        foreach (var escrow in new[] { byApi, byEmail })
        {
            var refunded = await app.WaitForStatusAsync(escrow.Id(), "refunded");
            Assert.DoesNotContain("released", refunded.Statuses());
            Assert.DoesNotContain("processing", refunded.Statuses());
            Assert.Contains("payment_intent_cancelled", refunded.Events());
            var piId = escrow.PaymentIntentId();
            Assert.Equal("canceled", app.Stripe.GetPaymentIntent(piId)!.Status);
            Assert.Single(app.SucceededCancels(piId));
            Assert.Empty(app.CaptureRequests(piId));
            Assert.Empty(app.TransfersOf(escrow.Id()));
            Assert.DoesNotContain(app.Stripe.Refunds, r => r.PaymentIntent == piId);
        }

        // A late reply after the refund is still too late, and moves nothing.
        var again = await app.ReplyAsync(byApi.Id());
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Equal("reply_too_late", await LifecycleApp.RejectionOf(again));
        Assert.Empty(app.Stripe.Transfers);
        Assert.DoesNotContain(app.Stripe.Requests, r => r.Operation == SandboxOperations.PaymentIntentsCapture);
    }
}
