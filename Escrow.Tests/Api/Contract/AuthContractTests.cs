namespace Escrow.Tests.Api.Contract;

/// <summary>Who may call what: API keys by role, the sender's bearer token, the dashboard's HTTP Basic.</summary>
public sealed class AuthContractTests(InMemoryApiFixture fixture) : IClassFixture<InMemoryApiFixture>
{
    private EscrowApiFactory App => fixture.Factory;

    private static readonly Guid AnyEscrow = Guid.NewGuid();

    public static TheoryData<string, string> PlatformRoutes => new()
    {
        { "PUT", "/v1/recipients/{r}" },
        { "GET", "/v1/recipients/{r}" },
        { "POST", "/v1/recipients/{r}/onboarding-link" },
        { "POST", "/v1/escrows/{e}/response" },
    };

    public static TheoryData<string, string> AdminRoutes => new()
    {
        { "GET", "/v1/admin/circuit-breaker" },
        { "POST", "/v1/admin/circuit-breaker/reset" },
        { "GET", "/v1/admin/escrows" },
        { "POST", "/v1/admin/escrows/{e}/release" },
        { "POST", "/v1/admin/escrows/{e}/refund" },
        { "POST", "/v1/admin/escrows/{e}/retry-transfer" },
        { "POST", "/v1/admin/escrows/{e}/approve-refund" },
        { "POST", "/v1/admin/escrows/{e}/resolve-dispute" },
        { "GET", "/v1/admin/alerts" },
        { "POST", "/v1/admin/alerts/1/ack" },
    };

    private static HttpRequestMessage Request(string method, string template, string recipient)
    {
        var request = new HttpRequestMessage(new HttpMethod(method), template.Replace("{r}", recipient, StringComparison.Ordinal).Replace("{e}", AnyEscrow.ToString(), StringComparison.Ordinal));
        if (method == "PUT")
        {
            request.Content = JsonContent.Create(new { email = Contract.EmailOf(recipient), displayName = "Alice", basePriceMinor = 1000, currency = "EUR" });
        }
        else if (method == "POST")
        {
            request.Content = JsonContent.Create(new { reason = "auth test", text = "an answer" });
        }
        return request;
    }

    [Theory]
    [MemberData(nameof(PlatformRoutes))]
    [MemberData(nameof(AdminRoutes))]
    public async Task Every_platform_and_admin_route_answers_401_problem_without_an_api_key(string method, string route)
    {
        var response = await App.Anonymous().SendAsync(Request(method, route, Contract.NewRecipient()));
        await Contract.AssertProblemAsync(response, HttpStatusCode.Unauthorized);
    }

    [Theory]
    [MemberData(nameof(PlatformRoutes))]
    [MemberData(nameof(AdminRoutes))]
    public async Task Every_platform_and_admin_route_answers_401_problem_with_an_unknown_api_key(string method, string route)
    {
        var response = await App.WithKey("not-a-key-of-this-service-0000").SendAsync(Request(method, route, Contract.NewRecipient()));
        await Contract.AssertProblemAsync(response, HttpStatusCode.Unauthorized);
    }

    [Theory]
    [MemberData(nameof(PlatformRoutes))]
    public async Task Platform_routes_answer_403_problem_to_the_admin_key(string method, string route)
    {
        var recipient = await App.NewRecipientAsync();
        var response = await App.Admin().SendAsync(Request(method, route, recipient));
        await Contract.AssertProblemAsync(response, HttpStatusCode.Forbidden);
    }

    [Theory]
    [MemberData(nameof(AdminRoutes))]
    public async Task Admin_routes_answer_403_problem_to_the_platform_key(string method, string route)
    {
        var response = await App.Platform().SendAsync(Request(method, route, Contract.NewRecipient()));
        await Contract.AssertProblemAsync(response, HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task Recipient_routes_answer_200_to_the_platform_key()
    {
        var recipient = Contract.NewRecipient();
        var put = await App.Platform().SendAsync(Request("PUT", "/v1/recipients/{r}", recipient));
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        var get = await App.Platform().GetAsync($"/v1/recipients/{recipient}");
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Equal(Contract.EmailOf(recipient), (await Contract.JsonOf(get)).GetProperty("email").GetString());
        var link = await App.Platform().PostAsync($"/v1/recipients/{recipient}/onboarding-link", null);
        Assert.Equal(HttpStatusCode.OK, link.StatusCode);
        Assert.StartsWith("acct_", (await Contract.JsonOf(link)).GetProperty("accountId").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_platform_reply_route_answers_200_to_the_platform_key_on_a_held_escrow()
    {
        var recipient = await App.NewRecipientAsync();
        var id = (await App.CreateHeldEscrowAsync(recipient)).GetProperty("id").GetGuid();
        var response = await App.Platform().PostAsJsonAsync($"/v1/escrows/{id}/response", new { text = "My answer." });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.NotEqual("held", (await Contract.JsonOf(response)).GetProperty("status").GetString());
    }

    [Theory]
    [InlineData("/v1/admin/circuit-breaker")]
    [InlineData("/v1/admin/escrows")]
    [InlineData("/v1/admin/alerts")]
    public async Task Admin_reads_answer_200_json_to_the_admin_key(string path)
    {
        var response = await App.Admin().GetAsync(path);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Admin_breaker_reset_answers_200_to_the_admin_key()
    {
        var response = await App.Admin().PostAsync("/v1/admin/circuit-breaker/reset", null);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("closed", (await Contract.JsonOf(response)).GetProperty("state").GetString());
    }

    [Fact]
    public async Task An_escrow_is_readable_with_the_platform_key_and_with_its_own_access_token()
    {
        var recipient = await App.NewRecipientAsync();
        var created = await App.CreateHeldEscrowAsync(recipient);
        var id = created.GetProperty("id").GetGuid();
        var token = created.GetProperty("accessToken").GetString()!;

        var byKey = await App.Platform().GetAsync($"/v1/escrows/{id}");
        Assert.Equal(HttpStatusCode.OK, byKey.StatusCode);
        var byToken = await App.WithBearer(token).GetAsync($"/v1/escrows/{id}");
        Assert.Equal(HttpStatusCode.OK, byToken.StatusCode);
        var view = await Contract.JsonOf(byToken);
        Assert.Equal(id, view.GetProperty("id").GetGuid());
        Assert.Equal(JsonValueKind.Null, view.GetProperty("accessToken").ValueKind);
        Assert.NotEqual(0, view.GetProperty("history").GetArrayLength());
    }

    [Fact]
    public async Task An_escrow_without_credentials_answers_401_problem()
    {
        var recipient = await App.NewRecipientAsync();
        var id = (await App.CreateHeldEscrowAsync(recipient)).GetProperty("id").GetGuid();
        await Contract.AssertProblemAsync(await App.Anonymous().GetAsync($"/v1/escrows/{id}"), HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task A_wrong_access_token_answers_401_the_same_whether_or_not_the_escrow_exists()
    {
        var recipient = await App.NewRecipientAsync();
        var first = await App.CreateHeldEscrowAsync(recipient);
        var second = await App.CreateHeldEscrowAsync(recipient);
        var otherToken = second.GetProperty("accessToken").GetString()!;

        var existing = await Contract.AssertProblemAsync(await App.WithBearer(otherToken).GetAsync($"/v1/escrows/{first.GetProperty("id").GetGuid()}"), HttpStatusCode.Unauthorized);
        var missing = await Contract.AssertProblemAsync(await App.WithBearer(otherToken).GetAsync($"/v1/escrows/{Guid.NewGuid()}"), HttpStatusCode.Unauthorized);
        var garbage = await Contract.AssertProblemAsync(await App.WithBearer("garbage").GetAsync($"/v1/escrows/{first.GetProperty("id").GetGuid()}"), HttpStatusCode.Unauthorized);

        Assert.Equal(existing.GetProperty("detail").GetString(), missing.GetProperty("detail").GetString());
        Assert.Equal(existing.GetProperty("detail").GetString(), garbage.GetProperty("detail").GetString());
        Assert.Equal(existing.GetProperty("title").GetString(), missing.GetProperty("title").GetString());
    }

    [Fact]
    public async Task The_dashboard_challenges_for_basic_credentials_without_them()
    {
        var response = await App.Anonymous().GetAsync("/dashboard/");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var challenge = Assert.Single(response.Headers.WwwAuthenticate);
        Assert.Equal("Basic", challenge.Scheme);
    }

    [Theory]
    [InlineData("admin")]
    [InlineData("anyone-at-all")]
    [InlineData("")]
    public async Task The_dashboard_serves_html_with_any_user_name_and_the_admin_key_as_password(string user)
    {
        var response = await App.WithBasic(user, EscrowApiFactory.AdminKey).GetAsync("/dashboard/");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
    }

    [Theory]
    [InlineData(EscrowApiFactory.PlatformKey)]
    [InlineData("not-a-key-of-this-service-0000")]
    public async Task The_dashboard_refuses_a_password_that_is_not_an_admin_key(string password)
    {
        var response = await App.WithBasic("admin", password).GetAsync("/dashboard/");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains(response.Headers.WwwAuthenticate, h => h.Scheme == "Basic");
    }

    [Fact]
    public async Task The_dashboard_does_not_accept_the_admin_key_as_an_x_api_key_header()
    {
        var response = await App.Admin().GetAsync("/dashboard/");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }
}
