package faceid_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/faceidq/faceidq/internal/faceid"
)

func ExampleClient_Apply() {
	// A stand-in for the upstream, answering one success and then an arrears error.
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.Header().Set("Content-Type", "application/json")
		if calls == 1 {
			io.WriteString(w, `{"Response":{"BizToken":"81EEF678","VerificationURL":"https://intl.faceid.qq.com/reflect/?token=81EEF678","RequestId":"r1"}}`)
			return
		}
		io.WriteString(w, `{"Response":{"Error":{"Code":"UnauthorizedOperation.Arrears","Message":"The account is in arrears."},"RequestId":"r2"}}`)
	}))
	defer srv.Close()

	c, err := faceid.New(faceid.Config{Endpoint: srv.URL, SecretID: "AKIDexample", SecretKey: "example-key"})
	if err != nil {
		panic(err)
	}
	url := "https://example.com/done"
	p := &faceid.ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: &url}
	if err := faceid.Validate(p); err != nil {
		panic(err)
	}

	res, err := c.Apply(context.Background(), "ap-singapore", p)
	if err != nil {
		panic(err)
	}
	fmt.Println(*res.BizToken, *res.VerificationURL)

	_, err = c.Apply(context.Background(), "", p)
	var ae *faceid.APIError
	if errors.As(err, &ae) {
		fmt.Println(ae.Code, ae.RequestID, faceid.Classify(err))
	}
	// Output:
	// 81EEF678 https://intl.faceid.qq.com/reflect/?token=81EEF678
	// UnauthorizedOperation.Arrears r2 account
}

func ExampleValidate() {
	img, had := faceid.StripDataURI("data:image/png;base64,QUJD")
	level := int64(3)
	actions := "blink"
	p := &faceid.ApplyWebVerificationBizTokenIntlRequestParams{
		RedirectURL:        new("https://example.com/done"),
		CompareImageBase64: &img,
		Config:             &faceid.WebVerificationConfigIntl{SecurityLevel: &level, ActionList: &actions},
	}
	fmt.Println(had)
	err := faceid.Validate(p)
	var fe *faceid.FieldError
	if errors.As(err, &fe) {
		fmt.Println(fe.Code)
		fmt.Println(fe)
	}
	// Output:
	// true
	// InvalidParameterValue
	// Config.ActionList: is only allowed when Config.SecurityLevel is 2, 4 or 5 (it is 3)
}
