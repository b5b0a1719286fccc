namespace Escrow.Tests.Api.Lifecycle;

/// <summary>Stripe failing during a release: the transfer is retried on its schedule, a lost answer is adopted, money moves once.</summary>
public sealed class StripeFaultTests
{
    private static readonly Dictionary<string, string?> FastRetry = new() { ["Escrow:TransferRetry:FirstDelay"] = "PT1S" };

    /// <summary>Stripe.net itself retries a 500 twice (maxNetworkRetries: 2) with the same idempotency key: three faults reach the grain.</summary>
    private const int FaultsThatReachTheGateway = 3;

    [Fact]
    public async Task A_transfer_that_fails_shows_transfer_failed_and_after_the_retry_delay_is_released_with_exactly_one_transfer()
    {
        await using var app = await LifecycleApp.StartAsync("fault_transfer_error", FastRetry);
        var (escrow, id) = await app.HeldEscrowOfNewRecipientAsync();

        // Stripe.net retries the 500 twice with the same key, and Stripe replays the saved 500 to both: one fault fails the call.
        app.Stripe.InjectFault(SandboxOperations.TransfersCreate, SandboxFaultKind.ServerError, 1);
        Assert.Equal(HttpStatusCode.OK, (await app.ReplyAsync(id)).StatusCode);
        await app.WaitForAsync(id, e => e.Events().Contains("transfer_failed"), "transfer_failed in history");
        Assert.Empty(app.TransfersOf(id));

        var released = await ReleasedAfterAnyRetryAsync(app, id);
        Assert.Contains("transfer_failed", released.Statuses());
        // The retry used the next attempt's key: the first one only ever answers its saved 500.
        Assert.Contains(app.Stripe.Requests, r => r.IdempotencyKey == $"escrow/{id:D}/transfer/1" && r.StatusCode == 200);
        var transfer = OnlyTransferNamedBy(app, id, released);
        Assert.Equal(escrow.GetProperty("recipientShareMinor").GetInt64(), transfer.Amount);
        Assert.Single(app.SucceededCaptures(escrow.PaymentIntentId()));
    }

    [Fact]
    public async Task A_single_transfer_server_error_is_absorbed_and_the_escrow_is_released_with_exactly_one_transfer()
    {
        await using var app = await LifecycleApp.StartAsync("fault_transfer_once", FastRetry);
        var (_, id) = await app.HeldEscrowOfNewRecipientAsync();

        await ReleasedThroughOneTransferFaultAsync(app, id, SandboxFaultKind.ServerError);

        Assert.Contains(app.Stripe.Requests, r => r.Operation == SandboxOperations.TransfersCreate && r.StatusCode == 500);
    }

    [Fact]
    public async Task A_transfer_whose_answer_is_lost_is_made_once_and_the_escrow_is_released_with_that_transfer()
    {
        await using var app = await LifecycleApp.StartAsync("fault_transfer_lost", FastRetry);
        var (escrow, id) = await app.HeldEscrowOfNewRecipientAsync();

        var transfer = await ReleasedThroughOneTransferFaultAsync(app, id, SandboxFaultKind.LostResponse);

        Assert.Equal(escrow.GetProperty("recipientShareMinor").GetInt64(), transfer.Amount);
        // The performed request was answered 500 (its answer "lost"); no later request made a second transfer.
        Assert.Contains(app.Stripe.Requests, r => r.Operation == SandboxOperations.TransfersCreate && !r.Replayed && r.StatusCode == 500);
    }

    [Fact]
    public async Task A_transfer_whose_answers_are_all_lost_is_adopted_from_the_transfer_group_instead_of_paid_twice()
    {
        await using var app = await LifecycleApp.StartAsync("fault_transfer_adopt", FastRetry);
        var (escrow, id) = await app.HeldEscrowOfNewRecipientAsync();

        // The transfer is made but every answer, including Stripe.net's own retries, is lost: the gateway reports a
        // failure although the transfer exists, and the retry must find it by transfer_group instead of paying again.
        app.Stripe.InjectFault(SandboxOperations.TransfersCreate, SandboxFaultKind.LostResponse, FaultsThatReachTheGateway);
        Assert.Equal(HttpStatusCode.OK, (await app.ReplyAsync(id)).StatusCode);
        // Adopted either from the transfer.created event or by the retry that reads the transfer group first.
        var released = await ReleasedAfterAnyRetryAsync(app, id);
        Assert.Contains("transfer_failed", released.Statuses());

        var transfer = OnlyTransferNamedBy(app, id, released);
        Assert.Equal(escrow.GetProperty("recipientShareMinor").GetInt64(), transfer.Amount);
        Assert.Contains("transfer_adopted", released.Events());
    }

    [Fact]
    public async Task A_capture_server_error_saved_under_its_key_is_retried_with_the_next_key_and_captures_once()
    {
        await using var app = await LifecycleApp.StartAsync("fault_capture", FastRetry);
        var (escrow, id) = await app.HeldEscrowOfNewRecipientAsync();
        var piId = escrow.PaymentIntentId();

        app.Stripe.InjectFault(SandboxOperations.PaymentIntentsCapture, SandboxFaultKind.ServerError, 1);
        Assert.Equal(HttpStatusCode.OK, (await app.ReplyAsync(id)).StatusCode);
        var released = await StatusAdvancingClockAsync(app, id, "released");

        Assert.Contains(app.Stripe.Requests, r => r.Operation == SandboxOperations.PaymentIntentsCapture && r.StatusCode == 500);
        Assert.Contains(app.Stripe.Requests, r => r.IdempotencyKey == $"escrow/{id:D}/capture" && r.Replayed && r.StatusCode == 500);
        Assert.Contains(app.Stripe.Requests, r => r.IdempotencyKey == $"escrow/{id:D}/capture/1" && r.StatusCode == 200);
        Assert.Single(app.SucceededCaptures(piId));
        Assert.Equal("succeeded", app.Stripe.GetPaymentIntent(piId)!.Status);
        OnlyTransferNamedBy(app, id, released);
    }

    [Fact]
    public async Task A_deadline_cancel_server_error_is_retried_with_the_next_key_and_refunds_the_escrow()
    {
        await using var app = await LifecycleApp.StartAsync("fault_cancel", FastRetry);
        var (escrow, id) = await app.HeldEscrowOfNewRecipientAsync();
        var piId = escrow.PaymentIntentId();

        app.Stripe.InjectFault(SandboxOperations.PaymentIntentsCancel, SandboxFaultKind.ServerError, 1);
        app.Clock.SetUtcNow(escrow.GetProperty("replyDeadline").GetDateTimeOffset().AddSeconds(1));
        await app.WakeAllAsync([id]);
        await StatusAdvancingClockAsync(app, id, "refunded");

        Assert.Equal("canceled", app.Stripe.GetPaymentIntent(piId)!.Status);
        Assert.Contains(app.Stripe.Requests, r => r.IdempotencyKey == $"escrow/{id:D}/cancel" && r.StatusCode == 500);
        Assert.Contains(app.Stripe.Requests, r => r.IdempotencyKey == $"escrow/{id:D}/cancel/1" && r.StatusCode == 200);
    }

    /// <summary>
    /// One fault of <paramref name="kind"/> on the transfer, then the reply: the escrow ends released with exactly one
    /// transfer, the one its view names.
    /// </summary>
    private static async Task<SandboxTransfer> ReleasedThroughOneTransferFaultAsync(EscrowApiFactory app, Guid id, SandboxFaultKind kind)
    {
        app.Stripe.InjectFault(SandboxOperations.TransfersCreate, kind, 1);
        Assert.Equal(HttpStatusCode.OK, (await app.ReplyAsync(id)).StatusCode);
        return OnlyTransferNamedBy(app, id, await ReleasedAfterAnyRetryAsync(app, id));
    }

    /// <summary>The escrow's only transfer at Stripe, which its released view names.</summary>
    private static SandboxTransfer OnlyTransferNamedBy(EscrowApiFactory app, Guid id, JsonElement released)
    {
        var transfer = Assert.Single(app.TransfersOf(id));
        Assert.Equal(transfer.Id, released.GetProperty("transferId").GetString());
        return transfer;
    }

    /// <summary>The released escrow, after the transfer's retry delay (on the fake clock) when its first try failed.</summary>
    private static async Task<JsonElement> ReleasedAfterAnyRetryAsync(EscrowApiFactory app, Guid id)
    {
        var seen = await app.WaitForAsync(id, e => e.Status() == "released" || e.Status() == "transfer_failed", "released or transfer_failed");
        if (seen.Status() == "released")
        {
            return seen;
        }
        app.Clock.Advance(TimeSpan.FromSeconds(2));
        return await app.WaitForStatusAsync(id, "released");
    }

    /// <summary>Waits for <paramref name="status"/>, moving the fake clock 5 s at each look so that a retry's backoff passes.</summary>
    private static Task<JsonElement> StatusAdvancingClockAsync(EscrowApiFactory app, Guid id, string status) =>
        app.WaitForAsync(id, e =>
        {
            if (e.Status() != status)
            {
                app.Clock.Advance(TimeSpan.FromSeconds(5));
            }
            return e.Status() == status;
        }, status);
}
