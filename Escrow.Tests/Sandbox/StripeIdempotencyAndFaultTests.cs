using Stripe;

namespace Escrow.Tests.Sandbox;

public sealed class StripeIdempotencyAndFaultTests
{
    [Fact]
    public async Task Replaying_an_idempotency_key_returns_the_same_object_and_performs_once()
    {
        await using var host = await SandboxTestHost.StartAsync();
        var service = new PaymentIntentService(host.Stripe);
        var pi = await host.AuthoriseAsync(5000, "auth-1");

        var first = await service.CaptureAsync(pi.Id, new PaymentIntentCaptureOptions(), SandboxTestHost.Key("capture-1"));
        var second = await service.CaptureAsync(pi.Id, new PaymentIntentCaptureOptions(), SandboxTestHost.Key("capture-1"));

        Assert.Equal(first.Id, second.Id);
        Assert.Equal("succeeded", second.Status);
        Assert.Equal("true", second.StripeResponse.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.Single(host.Sandbox.EventsOfType("payment_intent.succeeded"));
        var captures = host.Sandbox.Requests.Where(r => r.Operation == SandboxOperations.PaymentIntentsCapture).ToList();
        Assert.Equal(2, captures.Count);
        Assert.Single(captures, r => !r.Replayed);
        Assert.All(captures, r => Assert.Equal("capture-1", r.IdempotencyKey));
    }

    [Fact]
    public async Task Replaying_a_create_key_returns_the_same_payment_intent_without_creating_another()
    {
        await using var host = await SandboxTestHost.StartAsync();

        var first = await host.AuthoriseAsync(5000, "auth-1");
        var second = await host.AuthoriseAsync(5000, "auth-1");

        Assert.Equal(first.Id, second.Id);
        Assert.Single(host.Sandbox.PaymentIntents);
        Assert.Single(host.Sandbox.Charges);
    }

    [Fact]
    public async Task Reusing_a_key_with_different_parameters_is_400_idempotency_error()
    {
        await using var host = await SandboxTestHost.StartAsync();
        await host.AuthoriseAsync(5000, "auth-1");

        var ex = await Assert.ThrowsAsync<StripeException>(() => host.AuthoriseAsync(6000, "auth-1"));

        Assert.Equal(HttpStatusCode.BadRequest, ex.HttpStatusCode);
        Assert.Equal("idempotency_error", ex.StripeError.Type);
        Assert.StartsWith("Keys for idempotent requests can only be used with the same parameters",
            ex.StripeError.Message, StringComparison.Ordinal);
        Assert.Single(host.Sandbox.PaymentIntents);
    }

    [Fact]
    public async Task A_lost_response_performs_once_and_a_retry_with_the_same_key_gets_the_same_object()
    {
        await using var host = await SandboxTestHost.StartAsync();
        var pi = await host.AuthoriseAsync(5000, "auth-1");
        var account = await host.CreateAccountAsync(enablePayouts: true);
        await host.CaptureAsync(pi.Id, "capture-1");
        host.Sandbox.InjectFault(SandboxOperations.TransfersCreate, SandboxFaultKind.LostResponse);
        var options = new TransferCreateOptions
        {
            Amount = 3750, Currency = "eur", Destination = account.Id,
            SourceTransaction = pi.LatestChargeId, TransferGroup = "escrow-1",
        };
        var service = new TransferService(host.Stripe);

        var ex = await Assert.ThrowsAsync<StripeException>(() => service.CreateAsync(options, SandboxTestHost.Key("transfer-1")));
        var retried = await service.CreateAsync(options, SandboxTestHost.Key("transfer-1"));

        Assert.Equal(HttpStatusCode.InternalServerError, ex.HttpStatusCode);
        Assert.Equal("api_error", ex.StripeError.Type);
        var only = Assert.Single(host.Sandbox.Transfers);
        Assert.Equal(only.Id, retried.Id);
    }

    [Fact]
    public async Task Lost_answers_are_lost_for_replays_too_and_the_object_is_made_once()
    {
        await using var host = await SandboxTestHost.StartAsync();
        host.Sandbox.InjectFault(SandboxOperations.PaymentIntentsCreate, SandboxFaultKind.LostResponse, 2);

        await Assert.ThrowsAsync<StripeException>(() => host.AuthoriseAsync(5000, "auth-1"));
        await Assert.ThrowsAsync<StripeException>(() => host.AuthoriseAsync(5000, "auth-1"));
        var third = await host.AuthoriseAsync(5000, "auth-1");

        Assert.Equal(third.Id, Assert.Single(host.Sandbox.PaymentIntents).Id);
        Assert.Equal([false, true, true], host.Sandbox.Requests.Where(r => r.Operation == SandboxOperations.PaymentIntentsCreate).Select(r => r.Replayed));
    }

    [Fact]
    public async Task A_server_error_performs_nothing_and_is_replayed_to_a_retry_with_the_same_key_as_Stripe_saves_it()
    {
        await using var host = await SandboxTestHost.StartAsync();
        host.Sandbox.InjectFault(SandboxOperations.PaymentIntentsCreate, SandboxFaultKind.ServerError);

        var ex = await ServerErrorPerformingNothingAsync(host, "auth-1");

        Assert.Equal("api_error", ex.StripeError.Type);
        Assert.Empty(host.Sandbox.Events);
        await ServerErrorPerformingNothingAsync(host, "auth-1");
        Assert.Contains(host.Sandbox.Requests, r => r.IdempotencyKey == "auth-1" && r.Replayed && r.StatusCode == 500);

        // The next attempt's key performs it.
        await AuthorisingPerformsItAsync(host, "auth-1/1");
    }

    [Fact]
    public async Task A_server_error_before_execution_performs_nothing_saves_nothing_and_a_retry_with_the_same_key_performs_it()
    {
        await using var host = await SandboxTestHost.StartAsync();
        await InjectOverHttpAsync(host, "payment_intents.create", "server_error_before_execution");

        await ServerErrorPerformingNothingAsync(host, "auth-1");

        await AuthorisingPerformsItAsync(host, "auth-1");
    }

    [Fact]
    public async Task A_rate_limit_fault_set_over_http_answers_429_with_retry_after_and_performs_nothing()
    {
        await using var host = await SandboxTestHost.StartAsync();
        await InjectOverHttpAsync(host, "accounts.create", "rate_limited");

        var ex = await Assert.ThrowsAsync<StripeException>(() => host.CreateAccountAsync(enablePayouts: false));

        Assert.Equal((HttpStatusCode)429, ex.HttpStatusCode);
        Assert.Equal("rate_limit_error", ex.StripeError.Type);
        Assert.Equal("1", ex.StripeResponse.Headers.GetValues("Retry-After").Single());
        Assert.Empty(host.Sandbox.Accounts);
        await host.CreateAccountAsync(enablePayouts: false);
        Assert.Single(host.Sandbox.Accounts);
    }

    [Fact]
    public async Task Deleting_faults_clears_them_and_unknown_operations_are_rejected()
    {
        await using var host = await SandboxTestHost.StartAsync();
        using var bad = await host.Http.PostAsJsonAsync("/_sandbox/stripe/faults",
            new { operation = "charges.explode", kind = "server_error", times = 1 });
        using var good = await host.Http.PostAsJsonAsync("/_sandbox/stripe/faults",
            new { operation = "payment_intents.create", kind = "server_error", times = 3 });
        using var cleared = await host.Http.DeleteAsync("/_sandbox/stripe/faults");

        var pi = await host.AuthoriseAsync(5000, "auth-1");

        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal(HttpStatusCode.OK, good.StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, cleared.StatusCode);
        Assert.Equal("requires_capture", pi.Status);
    }

    /// <summary>A fault set through the sandbox's own HTTP route, as a test outside the process would set it.</summary>
    private static async Task InjectOverHttpAsync(SandboxTestHost host, string operation, string kind)
    {
        using var fault = await host.Http.PostAsJsonAsync("/_sandbox/stripe/faults", new { operation, kind, times = 1 });
        fault.EnsureSuccessStatusCode();
    }

    /// <summary>Authorises with <paramref name="key"/>: Stripe answers 500 and no PaymentIntent exists.</summary>
    private static async Task<StripeException> ServerErrorPerformingNothingAsync(SandboxTestHost host, string key)
    {
        var ex = await Assert.ThrowsAsync<StripeException>(() => host.AuthoriseAsync(5000, key));
        Assert.Equal(HttpStatusCode.InternalServerError, ex.HttpStatusCode);
        Assert.Empty(host.Sandbox.PaymentIntents);
        return ex;
    }

    /// <summary>Authorises with <paramref name="key"/>: the hold is made, and it is the only PaymentIntent.</summary>
    private static async Task AuthorisingPerformsItAsync(SandboxTestHost host, string key)
    {
        var pi = await host.AuthoriseAsync(5000, key);
        Assert.Equal("requires_capture", pi.Status);
        Assert.Single(host.Sandbox.PaymentIntents);
    }
}
