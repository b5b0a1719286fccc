using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Http;

namespace Escrow.Tests.Api.Lifecycle;

/// <summary>The whole service stopped and started again on the same database: escrows, deadlines and reminders survive.</summary>
public sealed class RestartTests
{
    [Fact]
    public async Task Held_escrows_survive_a_restart_with_their_deadlines_then_one_reply_releases_and_a_passed_deadline_refunds()
    {
        var connectionString = await (await PostgresServer.GetAsync()).CreateDatabaseAsync("restart");
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        JsonElement toReply, toExpire, toRetry;
        const string retryKey = "restart-retried-create";
        var first = await LifecycleApp.StartAsync("restart", clock: clock, connectionString: connectionString);
        try
        {
            var recipient = await first.PayableRecipientAsync();
            toReply = await first.CreateHeldEscrowAsync(recipient);
            toExpire = await first.CreateHeldEscrowAsync(recipient);
            toRetry = await first.CreateHeldEscrowAsync(recipient, retryKey);
        }
        finally
        {
            await first.DisposeAsync();
        }

        await using var restartedFactory = new EscrowApiFactory(connectionString, clock);
        var restarted = restartedFactory.WithWebHostBuilder(b => b.ConfigureTestServices(services =>
        {
            foreach (var name in new[] { EscrowHosting.StripeHttpClient, EscrowHosting.PostmarkHttpClient, SandboxOptions.WebhookHttpClientName })
            {
                // Replaces the factory's handler action, which calls TestServer.CreateHandler() when the handler is built.
                services.PostConfigure<HttpClientFactoryOptions>(name, o =>
                {
                    o.HttpMessageHandlerBuilderActions.Clear();
                    o.HttpMessageHandlerBuilderActions.Add(b => b.PrimaryHandler = new DeferredTestServerHandler(b.Services));
                });
            }
        }));
        var platform = restarted.CreateClient();
        platform.DefaultRequestHeaders.Add("X-Api-Key", EscrowApiFactory.PlatformKey);
        Task<JsonElement> GetAsync(Guid id) => platform.GetFromJsonAsync<JsonElement>($"/v1/escrows/{id}");
        Task<JsonElement> WaitAsync(Guid id, string status) => Eventually.UntilAsync(() => GetAsync(id), e => e.Status() == status, $"escrow {id} {status} after the restart");
        // Stripe outlives our process: the restarted emulator finds what the first one stored in the same database.
        var stripe = restarted.Services.GetRequiredService<StripeSandbox>();

        foreach (var before in new[] { toReply, toExpire })
        {
            var after = await GetAsync(before.Id());
            Assert.Equal("held", after.Status());
            Assert.Equal(before.GetProperty("expiresAt").GetDateTimeOffset(), after.GetProperty("expiresAt").GetDateTimeOffset());
            Assert.Equal(before.GetProperty("replyDeadline").GetDateTimeOffset(), after.GetProperty("replyDeadline").GetDateTimeOffset());
            Assert.Equal(before.PaymentIntentId(), after.PaymentIntentId());
            Assert.Equal("requires_capture", stripe.GetPaymentIntent(before.PaymentIntentId())!.Status);
        }

        // A create retried after the restart: its new activation inserts without reading, the stored row refuses the
        // insert, and the escrow it made answers (same access token: nothing of the retry was written).
        var retry = new HttpRequestMessage(HttpMethod.Post, "/v1/escrows") { Content = JsonContent.Create(EscrowApiFactory.EscrowBody(toRetry.GetProperty("recipientId").GetString()!)) };
        retry.Headers.Add("Idempotency-Key", retryKey);
        var retried = await restarted.CreateClient().SendAsync(retry);
        var retriedBody = await retried.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(retried.StatusCode == HttpStatusCode.Created, retriedBody.ToString());
        Assert.Equal(toRetry.Id(), retriedBody.Id());
        Assert.Equal(toRetry.GetProperty("accessToken").GetString(), retriedBody.GetProperty("accessToken").GetString());
        Assert.Equal(toRetry.PaymentIntentId(), retriedBody.PaymentIntentId());

        var reply = await platform.PostAsJsonAsync($"/v1/escrows/{toReply.Id()}/response", new { text = "Answered after the restart." });
        Assert.Equal(HttpStatusCode.OK, reply.StatusCode);
        var released = await WaitAsync(toReply.Id(), "released");
        var transfer = Assert.Single(stripe.Transfers, t => t.TransferGroup == toReply.Id().ToString());
        Assert.Equal(toReply.GetProperty("recipientShareMinor").GetInt64(), transfer.Amount);
        Assert.Equal(transfer.Id, released.GetProperty("transferId").GetString());

        // No wake call: the reminder registered before the restart must fire on its own.
        clock.SetUtcNow(toExpire.GetProperty("replyDeadline").GetDateTimeOffset() + TimeSpan.FromSeconds(1));
        var refunded = await WaitAsync(toExpire.Id(), "refunded");
        Assert.Contains("payment_intent_cancelled", refunded.Events());
        Assert.Equal("canceled", stripe.GetPaymentIntent(toExpire.PaymentIntentId())!.Status);
        Assert.Single(stripe.Requests, r => r.Path.Contains($"/payment_intents/{toExpire.PaymentIntentId()}/cancel", StringComparison.Ordinal) && !r.Replayed && r.StatusCode == 200);
        Assert.DoesNotContain(stripe.Transfers, t => t.TransferGroup == toExpire.Id().ToString());
    }
}
