using Stripe;

namespace Escrow.Tests.Sandbox;

public sealed class StripeConnectTests
{
    [Fact]
    public async Task Authorise_capture_and_transfer_with_source_transaction_is_listed_back_by_transfer_group()
    {
        await using var host = await SandboxTestHost.StartAsync();
        var account = await host.CreateAccountAsync(enablePayouts: true);
        var pi = await host.AuthoriseAsync(10_000, "auth-1", "escrow-42");
        await host.CaptureAsync(pi.Id, "capture-1");
        var transfers = new TransferService(host.Stripe);

        var transfer = await transfers.CreateAsync(new TransferCreateOptions
        {
            Amount = 7500, Currency = "eur", Destination = account.Id, SourceTransaction = pi.LatestChargeId,
            TransferGroup = "escrow-42", Metadata = new Dictionary<string, string> { ["escrow_id"] = "escrow-42" },
        }, SandboxTestHost.Key("transfer-1"));
        var listed = await transfers.ListAsync(new TransferListOptions { TransferGroup = "escrow-42", Limit = 10 });
        var otherGroup = await transfers.ListAsync(new TransferListOptions { TransferGroup = "escrow-other" });

        Assert.StartsWith("tr_", transfer.Id, StringComparison.Ordinal);
        Assert.Equal(account.Id, transfer.DestinationId);
        Assert.Equal(pi.LatestChargeId, transfer.SourceTransactionId);
        Assert.Equal("escrow-42", transfer.Metadata["escrow_id"]);
        var only = Assert.Single(listed.Data);
        Assert.Equal(transfer.Id, only.Id);
        Assert.False(listed.HasMore);
        Assert.Empty(otherGroup.Data);
    }

    [Fact]
    public async Task A_transfer_to_an_account_without_payouts_is_rejected_until_payouts_are_enabled()
    {
        await using var host = await SandboxTestHost.StartAsync();
        var account = await host.CreateAccountAsync(enablePayouts: false);
        var transfers = new TransferService(host.Stripe);
        var options = new TransferCreateOptions { Amount = 500, Currency = "eur", Destination = account.Id };

        var ex = await Assert.ThrowsAsync<StripeException>(() => transfers.CreateAsync(options, SandboxTestHost.Key("t-1")));
        using var enable = await host.Http.PostAsync($"/_sandbox/stripe/accounts/{account.Id}/enable-payouts", null);
        var transfer = await transfers.CreateAsync(options, SandboxTestHost.Key("t-2"));
        var reloaded = await new AccountService(host.Stripe).GetAsync(account.Id);

        Assert.Equal(HttpStatusCode.BadRequest, ex.HttpStatusCode);
        Assert.Equal("invalid_request_error", ex.StripeError.Type);
        Assert.Equal("insufficient_capabilities_for_transfer", ex.StripeError.Code);
        Assert.Equal("destination", ex.StripeError.Param);
        Assert.Equal(HttpStatusCode.OK, enable.StatusCode);
        Assert.Equal(500, transfer.Amount);
        Assert.True(reloaded.PayoutsEnabled);
        Assert.False(reloaded.ChargesEnabled); // only transfers was requested
        Assert.Equal("active", reloaded.Capabilities.Transfers);
    }

    [Fact]
    public async Task A_new_express_account_cannot_receive_payouts_yet()
    {
        await using var host = await SandboxTestHost.StartAsync();

        var account = await host.CreateAccountAsync(enablePayouts: false);

        Assert.StartsWith("acct_", account.Id, StringComparison.Ordinal);
        Assert.Equal("express", account.Type);
        Assert.Equal("expert@example.com", account.Email);
        Assert.False(account.ChargesEnabled);
        Assert.False(account.PayoutsEnabled);
        Assert.False(account.DetailsSubmitted);
        Assert.Equal("inactive", account.Capabilities.Transfers);
    }

    [Fact]
    public async Task A_transfer_larger_than_the_captured_source_or_from_an_uncaptured_charge_is_rejected()
    {
        await using var host = await SandboxTestHost.StartAsync();
        var account = await host.CreateAccountAsync(enablePayouts: true);
        var pi = await host.AuthoriseAsync(1000, "auth-1");
        var transfers = new TransferService(host.Stripe);

        var uncaptured = await Assert.ThrowsAsync<StripeException>(() => transfers.CreateAsync(new TransferCreateOptions
        {
            Amount = 500, Currency = "eur", Destination = account.Id, SourceTransaction = pi.LatestChargeId,
        }, SandboxTestHost.Key("t-1")));
        await host.CaptureAsync(pi.Id, "capture-1");
        var tooLarge = await Assert.ThrowsAsync<StripeException>(() => transfers.CreateAsync(new TransferCreateOptions
        {
            Amount = 1001, Currency = "eur", Destination = account.Id, SourceTransaction = pi.LatestChargeId,
        }, SandboxTestHost.Key("t-2")));
        var unknown = await Assert.ThrowsAsync<StripeException>(() => transfers.CreateAsync(new TransferCreateOptions
        {
            Amount = 10, Currency = "eur", Destination = "acct_unknown",
        }, SandboxTestHost.Key("t-3")));

        Assert.Equal(HttpStatusCode.BadRequest, uncaptured.HttpStatusCode);
        Assert.Equal("source_transaction", uncaptured.StripeError.Param);
        Assert.Equal(HttpStatusCode.BadRequest, tooLarge.HttpStatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, unknown.HttpStatusCode);
        Assert.Equal("resource_missing", unknown.StripeError.Code);
        Assert.Equal("destination", unknown.StripeError.Param);
        Assert.Empty(host.Sandbox.Transfers);
    }

    [Fact]
    public async Task Transfers_from_one_source_charge_add_up_and_cannot_exceed_what_was_captured()
    {
        await using var host = await SandboxTestHost.StartAsync();
        var account = await host.CreateAccountAsync(enablePayouts: true);
        var pi = await host.AuthoriseAsync(1000, "auth-sum");
        var other = await host.AuthoriseAsync(1000, "auth-other");
        var intents = new PaymentIntentService(host.Stripe);
        await intents.CaptureAsync(pi.Id, new PaymentIntentCaptureOptions(), SandboxTestHost.Key("capture-sum"));
        await intents.CaptureAsync(other.Id, new PaymentIntentCaptureOptions(), SandboxTestHost.Key("capture-other"));
        var transfers = new TransferService(host.Stripe);
        TransferCreateOptions From(string charge, long amount) =>
            new() { Amount = amount, Currency = "eur", Destination = account.Id, SourceTransaction = charge };

        await transfers.CreateAsync(From(pi.LatestChargeId, 600), SandboxTestHost.Key("sum-1"));
        // Another charge's transfers do not count against this one.
        await transfers.CreateAsync(From(other.LatestChargeId, 900), SandboxTestHost.Key("other-1"));
        var over = await Assert.ThrowsAsync<StripeException>(() => transfers.CreateAsync(From(pi.LatestChargeId, 401), SandboxTestHost.Key("sum-2")));
        var rest = await transfers.CreateAsync(From(pi.LatestChargeId, 400), SandboxTestHost.Key("sum-3"));
        var none = await Assert.ThrowsAsync<StripeException>(() => transfers.CreateAsync(From(pi.LatestChargeId, 1), SandboxTestHost.Key("sum-4")));

        Assert.Equal("amount_too_large", over.StripeError.Code);
        Assert.Equal(400, rest.Amount);
        Assert.Equal("amount_too_large", none.StripeError.Code);
        Assert.Equal(1000, host.Sandbox.Transfers.Where(t => t.SourceTransaction == pi.LatestChargeId).Sum(t => t.Amount));
        Assert.Equal(3, host.Sandbox.Transfers.Count);
    }

    [Fact]
    public async Task An_account_link_points_at_the_sandbox_onboarding_page_which_enables_payouts()
    {
        await using var host = await SandboxTestHost.StartAsync();
        var account = await host.CreateAccountAsync(enablePayouts: false);

        var link = await new AccountLinkService(host.Stripe).CreateAsync(new AccountLinkCreateOptions
        {
            Account = account.Id, Type = "account_onboarding",
            RefreshUrl = "https://platform.example/refresh", ReturnUrl = "https://platform.example/return",
        }, SandboxTestHost.Key("link-1"));
        var page = await host.Http.GetStringAsync(new Uri(link.Url).PathAndQuery);
        using var completed = await host.Http.PostAsync(new Uri(link.Url).PathAndQuery, null);

        Assert.StartsWith("http://localhost/_sandbox/stripe/connect/onboarding/acctlink_", link.Url, StringComparison.Ordinal);
        Assert.True(link.ExpiresAt > link.Created);
        Assert.Contains(account.Id, page, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Redirect, completed.StatusCode);
        Assert.Equal("https://platform.example/return", completed.Headers.Location?.ToString());
        Assert.True(host.Sandbox.GetAccount(account.Id)?.PayoutsEnabled);
    }

    [Fact]
    public async Task Transfers_of_a_group_page_newest_first_through_auto_paging()
    {
        await using var host = await SandboxTestHost.StartAsync(o => o.DeliverWebhooks = false);
        var account = await host.CreateAccountAsync(enablePayouts: true);
        var transfers = new TransferService(host.Stripe);
        var ids = new List<string>();
        for (var i = 1; i <= 5; i++)
        {
            var transfer = await transfers.CreateAsync(new TransferCreateOptions
            {
                Amount = i, Currency = "eur", Destination = account.Id, TransferGroup = "group-1",
            }, SandboxTestHost.Key($"t-{i}"));
            ids.Add(transfer.Id);
        }

        var firstPage = await transfers.ListAsync(new TransferListOptions { TransferGroup = "group-1", Limit = 2 });
        var all = new List<string>();
        await foreach (var transfer in transfers.ListAutoPagingAsync(
            new TransferListOptions { TransferGroup = "group-1", Limit = 2 }))
        {
            all.Add(transfer.Id);
        }

        Assert.True(firstPage.HasMore);
        Assert.Equal(ids.AsEnumerable().Reverse().Take(2), firstPage.Data.Select(t => t.Id));
        Assert.Equal(ids.AsEnumerable().Reverse(), all);
    }
}
